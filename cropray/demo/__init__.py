"""`cropray demo`: synth -> tune -> bundle -> score -> eval -> HTML report, on the embedded local Ray."""

from cropray.demo.config import DemoConfig


def run_demo(cfg: DemoConfig, **kw):
    from cropray.demo.run import run_demo as _run

    return _run(cfg, **kw)


__all__ = ["DemoConfig", "run_demo"]
