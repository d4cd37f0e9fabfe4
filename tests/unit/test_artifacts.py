"""The strict Jinja environment keeps compiled templates between runs, in a directory of its own."""

from __future__ import annotations

import os

import jinja2
import pytest

from claude_docker import artifacts


@pytest.fixture
def fresh_environment(cd_home):
    cd_home.mkdir(parents=True, exist_ok=True)
    artifacts.environment.cache_clear()
    yield cd_home / artifacts.TEMPLATE_CACHE
    artifacts.environment.cache_clear()


def compiled(monkeypatch) -> list[str]:
    names: list[str] = []
    real = jinja2.Environment.compile

    def compile(self, source, name=None, *args, **kwargs):
        names.append(name)
        return real(self, source, name, *args, **kwargs)

    monkeypatch.setattr(jinja2.Environment, "compile", compile)
    return names


def render(name: str = "dnsmasq.conf.j2") -> None:
    artifacts.environment.cache_clear()  # as in a new process
    artifacts.environment().get_template(name)


def test_a_template_is_compiled_once_and_then_loaded(fresh_environment, monkeypatch):
    names = compiled(monkeypatch)
    render()
    assert names == ["dnsmasq.conf.j2"]
    assert [entry.stat().st_mode & 0o777 for entry in fresh_environment.iterdir()] == [0o600]
    assert fresh_environment.stat().st_mode & 0o777 == 0o700
    render()
    assert names == ["dnsmasq.conf.j2"]  # loaded, not compiled again


def test_a_damaged_entry_is_compiled_again(fresh_environment, monkeypatch):
    render()
    [entry] = fresh_environment.iterdir()
    magic = jinja2.bccache.bc_magic
    entry.write_bytes(magic + b"\x00not a pickle")  # damaged behind a valid header
    names = compiled(monkeypatch)
    render()
    assert names == ["dnsmasq.conf.j2"]


def test_a_cache_others_can_write_is_not_used(fresh_environment, monkeypatch):
    render()
    os.chmod(fresh_environment, 0o777)
    names = compiled(monkeypatch)
    render()
    render()
    assert names == ["dnsmasq.conf.j2", "dnsmasq.conf.j2"]
