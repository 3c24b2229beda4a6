"""prefect.yaml and dvc.yaml point at code that exists and at the shared CLI."""

import importlib

import yaml

from tests.conftest import ROOT


def test_prefect_deployments_reference_real_flows():
    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    assert spec["deployments"]
    from prefect import Flow

    for dep in spec["deployments"]:
        path, name = dep["entrypoint"].split(":")
        module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
        flow = getattr(module, name)
        assert isinstance(flow, Flow)
        assert set(dep.get("parameters", {})) <= set(flow.parameters.properties)
        for sched in dep.get("schedules", []):
            assert len(sched["cron"].split()) == 5


def test_dvc_stages_use_the_honing_cli():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    assert {"prepare_data", "validate", "train"} <= set(stages)
    for stage in stages.values():
        assert stage["cmd"].startswith("honing ")
