#!/usr/bin/env bash
# Slurm launcher for `hmr train` on one or more GPU nodes (torchrun, one process per GPU).
#
#   sbatch --nodes=2 --gpus-per-node=8 hmr/training/slurm_train.sh hmr_l1_coco --out runs/hmr_l1_coco
#
# Extra arguments go to `hmr train` unchanged (config name, overrides, --out). The run resumes
# from its latest checkpoint automatically, so a requeued or preempted job continues where it
# stopped: on SIGTERM (sent by Slurm before the time limit, see --signal below) the trainer
# writes a checkpoint and exits, and `scontrol requeue` / a resubmission picks it up. The
# signal may reach the nodes at different moments: the ranks agree on it and all stop after
# the same step. The run folder (--out) must be on storage every node reads. This launch
# (torchrun, c10d rendezvous, --resume) is what tests/hmr/training/test_multinode.py runs on
# 2 "nodes" on the loopback; docs/scale-out.md, "Training on several nodes".
#
#SBATCH --job-name=hmr-train
#SBATCH --ntasks-per-node=1
#SBATCH --cpus-per-task=16
#SBATCH --signal=TERM@120
#SBATCH --requeue
#SBATCH --output=slurm-%x-%j.out

set -euo pipefail
GPUS_PER_NODE=${SLURM_GPUS_ON_NODE:-$(nvidia-smi -L | wc -l)}
MASTER_ADDR=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
MASTER_PORT=${MASTER_PORT:-29500}
PYTHON=${PYTHON:-python}

# The resumable flag is harmless on a fresh run folder: with no checkpoint the run starts anew.
srun --kill-on-bad-exit=1 "$PYTHON" -m torch.distributed.run \
    --nnodes="$SLURM_NNODES" --nproc-per-node="$GPUS_PER_NODE" \
    --rdzv-backend=c10d --rdzv-endpoint="$MASTER_ADDR:$MASTER_PORT" --rdzv-id="$SLURM_JOB_ID" \
    -m cli.main train "$@" --resume --no-progress
