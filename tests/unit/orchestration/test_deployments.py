"""prefect.yaml and dvc.yaml point at code that exists and at the shared CLI."""

import importlib

import yaml

from tests.conftest import ROOT


def test_prefect_deployments_reference_real_flows():
    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    assert spec["deployments"]
    from prefect import Flow

    from honing_flows.flows.monitoring import DRIFT_DETECTED
    from honing_flows.flows.watch import DATA_CHANGED

    for dep in spec["deployments"]:
        path, name = dep["entrypoint"].split(":")
        module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
        flow = getattr(module, name)
        assert isinstance(flow, Flow)
        assert set(dep.get("parameters", {})) <= set(flow.parameters.properties)
        for sched in dep.get("schedules", []):
            assert "interval" in sched or len(sched["cron"].split()) == 5
        for trigger in dep.get("triggers", []):  # the events the flows emit
            assert trigger["expect"] in ([DATA_CHANGED], [DRIFT_DETECTED])


def test_dvc_stages_use_the_honing_cli():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    assert {"prepare_data", "prepare_flights", "validate", "train"} <= set(stages)
    for stage in stages.values():
        cmds = stage["cmd"] if isinstance(stage["cmd"], list) else [stage["cmd"]]
        assert all(c.startswith("honing ") for c in cmds)
