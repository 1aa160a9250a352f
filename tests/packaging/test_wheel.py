"""The packages and the manifests' data files survive a normal (non-editable) install."""

import subprocess
import sys
import zipfile

import pytest


@pytest.mark.slow
def test_wheel_contains_packages_and_manifest_data(tmp_path):
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                          "-q", "-w", str(tmp_path), "."], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    wheel = next(tmp_path.glob("hmrkit-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for package in ("converters", "hmr", "loaders", "cli", "manifests"):
        assert f"{package}/__init__.py" in names, package
    tomls = [n for n in names if n.startswith("manifests/") and n.endswith(".toml")]
    assert len(tomls) >= 30, tomls
    assert "manifests/source.schema.json" in names
    assert not any(n.startswith("tests/") for n in names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "hmr = cli.main:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


@pytest.mark.slow
def test_installed_copy_finds_manifests(tmp_path):
    target = tmp_path / "site"
    out = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation",
                          "-q", "--target", str(target), "."], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    code = ("import manifests, sys; names = manifests.list_manifests(); "
            "assert manifests.__file__.startswith(sys.argv[1]), manifests.__file__; "
            "print(len(names)); manifests.load_manifest(names[0])")
    run = subprocess.run([sys.executable, "-c", code, str(target)], capture_output=True, text=True,
                         cwd=tmp_path, env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin",
                                            "HMR_MANIFEST_DIR": str(tmp_path / "none")}, timeout=120)
    assert run.returncode == 0, run.stderr
    assert int(run.stdout.strip()) >= 30
