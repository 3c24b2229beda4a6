"""Credentials in a tracking URI never reach the screen or the logs."""

from honing import tracking
from honing.config.settings import redact
from honing.exceptions import TrackingUnavailableError


def test_redact_masks_passwords_in_uris_and_parameters():
    text = (
        "cannot reach postgresql://mlflow:s3cr3t@127.0.0.1:5432/mlflow and "
        "http://alice:hunter2@127.0.0.1:5000 (db?user=x&password=topsecret)"
    )
    out = redact(text)
    assert "s3cr3t" not in out and "hunter2" not in out and "topsecret" not in out
    assert "postgresql://mlflow:***@127.0.0.1:5432/mlflow" in out
    assert "http://alice:***@127.0.0.1:5000" in out and "password=***" in out
    assert redact("sqlite:///mlflow.db") == "sqlite:///mlflow.db"


def test_an_unreachable_server_error_names_it_without_its_password():
    try:
        tracking.ping("http://bob:pa55word@127.0.0.1:9/", timeout_s=0.5)
    except TrackingUnavailableError as exc:
        assert "pa55word" not in str(exc) and "bob:***@127.0.0.1:9" in str(exc)
    else:
        raise AssertionError("port 9 answered a health check")
