from __future__ import annotations

import pytest

from workeros.config import Settings, env_name
from workeros.errors import StartupError
from workeros.hookspecs.lifecycle import ConfigKey


def test_precedence_default_file_env_cli() -> None:
    file = {"server": {"port": 9000, "host": "0.0.0.0"}, "log": {"level": "debug"}}
    env = {"WORKEROS_SERVER_PORT": "9100", "WORKEROS_LOG_LEVEL": "warning"}
    s = Settings(file=file, env=env, cli={"server.port": 9200})
    assert (s["server.port"], s.source("server.port")) == (9200, "cli")
    assert (s["log.level"], s.source("log.level")) == ("warning", "env")
    assert (s["server.host"], s.source("server.host")) == ("0.0.0.0", "file")
    assert (s["server.workers"], s.source("server.workers")) == (1, "default")


def test_env_values_are_coerced_to_the_declared_type() -> None:
    s = Settings(env={"WORKEROS_STRICT_PLUGINS": "yes", "WORKEROS_DISABLE_PLUGINS": "a, b",
                      "WORKEROS_SERVER_SHUTDOWN_TIMEOUT": "2.5"})
    assert s["strict_plugins"] is True
    assert s["disable_plugins"] == ["a", "b"]
    assert s["server.shutdown_timeout"] == 2.5


@pytest.mark.parametrize("var,value", [("WORKEROS_SERVER_PORT", "eighty"), ("WORKEROS_STRICT_PLUGINS", "maybe"),
                                       ("WORKEROS_LOG_FORMAT", "xml")])
def test_bad_values_are_startup_errors_naming_the_setting(var: str, value: str) -> None:
    s = Settings(env={var: value})
    key = {"WORKEROS_SERVER_PORT": "server.port", "WORKEROS_STRICT_PLUGINS": "strict_plugins",
           "WORKEROS_LOG_FORMAT": "log.format"}[var]
    with pytest.raises(StartupError, match=key.replace(".", r"\.")):
        s[key]


def test_env_and_file_indirection(tmp_path, monkeypatch) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text("s3cr3t\n")
    monkeypatch.setenv("MY_DB", "postgresql://u:pw@db/x")
    s = Settings(file={"database": {"url": {"$env": "MY_DB"}}, "auth": {"jwt_secret": {"$file": str(secret_file)}}},
                 env={})
    s.declare([ConfigKey("auth.jwt_secret", "str")], owner="test")
    assert s["database.url"] == "postgresql://u:pw@db/x"
    assert s["auth.jwt_secret"] == "s3cr3t"
    with pytest.raises(StartupError, match="NOPE"):
        Settings(file={"server": {"host": {"$env": "NOPE"}}}, env={})["server.host"]


def test_plugin_keys_are_declared_and_namespaced_in_file(tmp_path) -> None:
    s = Settings(file={"plugins": {"workeros-saml": {"idp_url": "https://idp"}}, "saml": {"sp_name": "x"}},
                 env={"WORKEROS_SAML_TIMEOUT": "3"})
    s.declare([ConfigKey("saml.idp_url"), ConfigKey("saml.sp_name"), ConfigKey("saml.timeout", "int")],
              owner="workeros-saml")
    assert s["saml.idp_url"] == "https://idp"
    assert s["saml.sp_name"] == "x"
    assert s["saml.timeout"] == 3
    assert env_name("saml.idp_url") == "WORKEROS_SAML_IDP_URL"


def test_unknown_keys_are_reported() -> None:
    s = Settings(file={"server": {"prot": 1}}, env={"WORKEROS_SEVER_HOST": "x"})
    assert s.unknown() == [("env", "WORKEROS_SEVER_HOST"), ("file", "server.prot")]


def test_two_owners_cannot_declare_one_key() -> None:
    s = Settings(env={})
    s.declare([ConfigKey("x.y")], owner="workeros-a")
    with pytest.raises(StartupError, match="workeros-a and workeros-b"):
        s.declare([ConfigKey("x.y")], owner="workeros-b")


def test_secrets_are_never_described_in_clear() -> None:
    s = Settings(env={"WORKEROS_AUTH_JWT_SECRET": "topsecret",
                      "WORKEROS_DATABASE_URL": "postgresql://user:hunter2@db:5432/app"})
    s.declare([ConfigKey("auth.jwt_secret", secret=True)], owner="test")
    rows = {row.name: row for row in s.describe()}
    assert rows["auth.jwt_secret"].value == "***"
    assert rows["auth.jwt_secret"].secret
    assert "hunter2" not in rows["database.url"].value
    assert "topsecret" not in repr(s.describe())


def test_config_file_is_found_in_the_data_dir(tmp_path) -> None:
    (tmp_path / "workeros.toml").write_text('[server]\nport = 9999\n')
    s = Settings.load(env={"WORKEROS_DATA_DIR": str(tmp_path)})
    assert s["server.port"] == 9999
    assert s.source("server.port") == "file"
    with pytest.raises(StartupError, match="does not exist"):
        Settings.load(env={"WORKEROS_CONFIG": str(tmp_path / "missing.toml")})
    (tmp_path / "bad.toml").write_text("[server\n")
    with pytest.raises(StartupError, match="cannot read config file"):
        Settings.load(env={"WORKEROS_CONFIG": str(tmp_path / "bad.toml")})


def test_database_url_defaults_to_sqlite_in_the_data_dir(tmp_path) -> None:
    s = Settings(env={}, cli={"data_dir": str(tmp_path)})
    assert s["database.url"] == f"sqlite:///{tmp_path.resolve() / 'data.db'}"


def test_settings_reference_is_current() -> None:
    import runpy
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    module = runpy.run_path(str(root / "scripts" / "gen_config_docs.py"))
    current = (root / "docs" / "configuration.md").read_text()
    assert current == module["render"](current), "docs/configuration.md is stale: run python scripts/gen_config_docs.py"
