"""The private Prefect API a command starts for itself (honing_flows.api_server)."""

from __future__ import annotations

from honing_flows import api_server


def test_a_private_api_runs_only_the_services_that_record_its_runs(monkeypatch):
    """The server of one command's private API leaves off the services of a long-lived server
    (schedules, late runs, workers' health, automations...) and keeps the two that write the
    run's history. Each is a setting Prefect reads from the environment, where a misspelled
    name is ignored: Prefect's own settings read the environment back."""
    from prefect.settings import Settings

    env = api_server.server_environment({"PREFECT_HOME": "/nowhere"}, "honing:secret")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = Settings()
    services = settings.server.services
    assert api_server.IDLE_SERVICES, "nothing is turned off"
    for name in api_server.IDLE_SERVICES:
        assert getattr(services, name).enabled is False, name
    assert services.task_run_recorder.enabled and services.event_persister.enabled
    assert settings.server.api.auth_string.get_secret_value() == "honing:secret"
    assert settings.server.ui.enabled is False and settings.server.analytics_enabled is False
    assert env["PREFECT_HOME"] == "/nowhere"  # the command's own environment is kept
