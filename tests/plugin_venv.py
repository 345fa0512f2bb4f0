"""A virtual environment for installing a plugin the way its users do (a wheel
built from its folder, not an editable path) and running the plugin's own tests
in it, without reinstalling workeros and its dependencies each time: the new
venv sees the project's venv through a ``.pth`` file (``site.addsitedir``, so
the editable installs there still resolve) and its own site-packages come first.
``python -P`` keeps the working folder off ``sys.path``, so a plugin's tests
import the installed copy, not the source beside them."""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import sysconfig
from pathlib import Path


class PluginVenv:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.python = folder / "bin" / "python"
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True)
        purelib = Path(sysconfig.get_path("purelib", vars={"base": str(folder), "platbase": str(folder)}))
        parents = [p for p in site.getsitepackages() if Path(p).is_dir()]
        purelib.joinpath("_workeros_project.pth").write_text(
            "".join(f"import site; site.addsitedir({p!r})\n" for p in parents), encoding="utf-8")

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("WORKEROS_")}
        env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
        env.pop("PYTHONPATH", None)
        env["VIRTUAL_ENV"] = str(self.folder)
        env["PATH"] = f"{self.folder / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        return env

    def run(self, *argv: str, cwd: Path | None = None, timeout: float = 900) -> subprocess.CompletedProcess:
        return subprocess.run([str(self.python), "-P", *argv], cwd=cwd, env=self.env(), capture_output=True,
                              text=True, timeout=timeout)

    def install(self, *sources: Path) -> None:
        """Build each source folder into a wheel and install it, without its
        dependencies (they are the project's). The build runs on a copy, so no
        ``build/`` or ``*.egg-info`` is left in (or reused from) the source."""
        copies = []
        for source in sources:
            copy = self.folder / "sources" / source.name
            shutil.rmtree(copy, ignore_errors=True)
            shutil.copytree(source, copy, ignore=shutil.ignore_patterns(
                "build", "dist", "*.egg-info", "__pycache__", ".workeros"))
            copies.append(str(copy))
        done = self.run("-m", "pip", "install", "-q", "--no-deps", *copies)
        assert done.returncode == 0, done.stdout + done.stderr

    def workeros(self, *argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
        return self.run("-c", "import sys; from workeros.cli import main; sys.exit(main())", *argv, cwd=cwd)

    def pytest(self, folder: Path, *argv: str) -> subprocess.CompletedProcess:
        """The plugin's own tests, with its own configuration (``folder``'s
        pyproject.toml), against the installed plugin."""
        return self.run("-m", "pytest", "-q", "-p", "no:cacheprovider", *argv, cwd=folder)
