"""repropack: freeze, build, run and publish research workflows so anyone can rerun them."""

__version__ = "0.1.0"
