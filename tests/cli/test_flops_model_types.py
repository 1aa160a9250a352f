"""hmr flops counts the model a config selects, not always HMR."""

import re

from cli.main import main


def _params(capsys, config: str) -> float:
    assert main(["flops", config]) == 0
    return float(re.search(r"params\s+([\d.]+) M", capsys.readouterr().out).group(1))


def test_flops_counts_the_configured_model_type(capsys):
    hmr, graphcmr = _params(capsys, "hmr_normal"), _params(capsys, "graphcmr_normal")
    assert 25 < hmr < 30  # ResNet-50 + the HMR regressor
    assert graphcmr > hmr + 5  # the graph CNN and the SMPL regressor on top of the same backbone
