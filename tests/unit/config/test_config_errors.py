"""Invalid configurations and the exact messages they produce (file, line, key path, words)."""

from __future__ import annotations

import os
import textwrap

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from claude_docker.config.pipeline import load_config
from claude_docker.errors import ConfigError
from tests.support.examples import examples


@pytest.fixture
def project(tmp_path, monkeypatch, cd_home):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    directory = tmp_path / "proj"
    directory.mkdir()
    return directory


def problems_for(project, text: str, environ: dict | None = None, files: dict | None = None) -> list[str]:
    for name, content in (files or {}).items():
        (project / name).write_text(textwrap.dedent(content))
    path = project / "claude-docker.yaml"
    path.write_text(textwrap.dedent(text))
    with pytest.raises(ConfigError) as caught:
        load_config(str(path), cwd=project, environ=environ or {})
    home = os.environ["CLAUDE_DOCKER_HOME"]
    return [problem.format().replace(f"{project}/", "").replace(home, "$CLAUDE_DOCKER_HOME") for problem in caught.value.problems]


INVALID = [
    pytest.param(
        "network:\n  alowed_domains: [x.com]\n",
        ["claude-docker.yaml:2: network.alowed_domains: unknown key 'alowed_domains'; did you mean 'allowed_domains'?"],
        id="unknown-key-did-you-mean",
    ),
    pytest.param(
        "netwrk: {}\n",
        ["claude-docker.yaml:1: netwrk: unknown key 'netwrk'; did you mean 'network'?"],
        id="unknown-top-level-key",
    ),
    pytest.param(
        "network:\n  allowed_domains: [github.com, ok.org, \"bad domain\"]\n",
        ["claude-docker.yaml:2: network.allowed_domains[2]: \"bad domain\" is not a valid domain name: expected "
         "letters, digits, '-' and '.', optionally starting with '*.' and ending with :port (e.g. github.com, *.githubusercontent.com or github.com:22)"],
        id="domain-with-space",
    ),
    pytest.param(
        "network:\n  allowed_domains:\n    - github.com\n    - \"$$(curl evil)\"\n",
        ["claude-docker.yaml:4: network.allowed_domains[1]: \"$(curl evil)\" is not a valid domain name: expected "
         "letters, digits, '-' and '.', optionally starting with '*.' and ending with :port (e.g. github.com, *.githubusercontent.com or github.com:22)"],
        id="domain-command-substitution",
    ),
    pytest.param(
        "image:\n  apt_packages: [ripgrep, \"jq; rm -rf /\"]\n",
        ["claude-docker.yaml:2: image.apt_packages[1]: \"jq; rm -rf /\" is not a valid Debian package name: "
         "expected lower-case letters, digits and + - . (optionally =version), e.g. ripgrep"],
        id="apt-injection",
    ),
    pytest.param(
        "image:\n  npm_packages: [\"--registry=http://evil\"]\n",
        ["claude-docker.yaml:2: image.npm_packages[0]: \"--registry=http://evil\" is not a valid npm package name: "
         "expected [@scope/]name[@version], e.g. typescript or @org/tool@1.2.3"],
        id="npm-leading-dash",
    ),
    pytest.param(
        "image:\n  base: \"Node 22\"\n",
        ["claude-docker.yaml:2: image.base: \"Node 22\" is not a valid image reference: expected "
         "[registry[:port]/]name[:tag][@sha256:digest], lower-case name (e.g. node:22-bookworm-slim)"],
        id="image-ref",
    ),
    pytest.param(
        "image:\n  claude_code_version: 2.1\n",
        ["claude-docker.yaml:2: image.claude_code_version: expected text, got a number (2.1); put the value in quotes"],
        id="unquoted-version",
    ),
    pytest.param(
        "image:\n  claude_code_version: 2024-01-01\n",
        ["claude-docker.yaml:2: image.claude_code_version: \"2024-01-01\" is not a valid Claude Code version: "
         "expected latest, stable, next or a version such as 2.1.32"],
        id="date-stays-text",
    ),
    pytest.param(
        "version: 2\n",
        ["claude-docker.yaml:1: version: must be 1, got 2"],
        id="version",
    ),
    pytest.param(
        "network:\n  firewall: yes\n",
        ["claude-docker.yaml:2: network.firewall: expected true or false, got text (\"yes\")"],
        id="yaml11-boolean-is-text",
    ),
    pytest.param(
        "persistence:\n  auth: maybe\n",
        ["claude-docker.yaml:2: persistence.auth: \"maybe\" is not one of: \"project\", \"shared\", \"none\", false"],
        id="auth-enum",
    ),
    pytest.param(
        "notifier:\n  on: [stop, nope]\n",
        ["claude-docker.yaml:2: notifier.on[1]: \"nope\" is not one of: \"stop\", \"notification\", \"failure\", \"session_end\""],
        id="notifier-event",
    ),
    pytest.param(
        "notifier:\n  twilio:\n    account_sid: AC00000000000000000000000000000000\n    auth_token: t\n"
        "    from: \"555\"\n    to: [\"+15551234567\"]\n",
        ["claude-docker.yaml:5: notifier.twilio.from: \"555\" is not a valid phone number: expected E.164 format: "
         "+ then up to 15 digits (e.g. +15551234567)"],
        id="e164",
    ),
    pytest.param(
        "notifier:\n  twilio:\n    account_sid: AC00000000000000000000000000000000\n",
        [
            "claude-docker.yaml:2: notifier.twilio: missing required key 'to'",
            "claude-docker.yaml:2: notifier.twilio: needs 'from' (a phone number) or 'messaging_service_sid'",
            "claude-docker.yaml:2: notifier.twilio: needs 'auth_token', or 'api_key_sid' with 'api_key_secret'",
        ],
        id="twilio-incomplete",
    ),
    pytest.param(
        "claude:\n  env:\n    1BAD: x\n",
        ["claude-docker.yaml:3: claude.env.1BAD: \"1BAD\" is not a valid environment variable name: expected "
         "letters, digits and _, not starting with a digit"],
        id="env-name",
    ),
    pytest.param(
        "claude:\n  mcp_servers:\n    web:\n      type: http\n      url: https://x.example/mcp\n      command: npx\n",
        ["claude-docker.yaml:6: claude.mcp_servers.web.command: \"command\" is not a valid key for an http or sse "
         "MCP server: expected type, url or headers"],
        id="mcp-http-with-command",
    ),
    pytest.param(
        "claude:\n  mcp_servers:\n    local:\n      args: [x]\n",
        ["claude-docker.yaml:3: claude.mcp_servers.local: missing required key 'command'"],
        id="mcp-stdio-without-command",
    ),
    pytest.param(
        "network:\n  allowed_cidrs: [\"10.0.0.0/33\", \"10.1.2.3/32:99999\"]\n",
        [
            "claude-docker.yaml:2: network.allowed_cidrs[0]: '10.0.0.0/33' is not a valid IP address or network "
            "(e.g. 10.0.0.0/8 or 10.1.2.3/32:443)",
            "claude-docker.yaml:2: network.allowed_cidrs[1]: port 99999 is out of range 1-65535",
        ],
        id="cidr",
    ),
    pytest.param(
        "network:\n  allowed_cidrs: [\"10.0.0.0/8\", \"fd00::/8\"]\n",
        [
            "claude-docker.yaml:2: network.allowed_cidrs[1]: 'fd00::/8' is IPv6, but the firewall closes IPv6 "
            "entirely; allow the service's IPv4 network instead",
        ],
        id="cidr-ipv6",
    ),
    pytest.param(
        "image:\n  extra_ca_certificates:\n    - /etc/passwd\n",
        [
            "claude-docker.yaml:3: image.extra_ca_certificates[0]: /etc/passwd holds no PEM certificate; use a PEM "
            "file (text starting with -----BEGIN CERTIFICATE-----)",
        ],
        id="ca-not-pem",
    ),
    pytest.param(
        "filesystem:\n  mounts:\n    - {source: /tmp, target: /opt/claude-docker/x}\n",
        [
            "claude-docker.yaml:3: filesystem.mounts[0].target: target /opt/claude-docker/x overlaps /opt/claude-docker, "
            "which claude-docker manages; pick another container path",
        ],
        id="mount-over-managed",
    ),
    pytest.param(
        "resources:\n  memory: 8\n  gpus: some\n",
        [
            "claude-docker.yaml:2: resources.memory: expected text or null, got a number (8)",
            "claude-docker.yaml:3: resources.gpus: \"some\" is not a valid GPU request: expected \"all\", a number of GPUs, or null",
        ],
        id="resources",
    ),
    pytest.param(
        "notifier:\n  template: \"{{ event.cwd \"\n",
        ["claude-docker.yaml:2: notifier.template: not a valid Jinja template: unexpected end of template, "
         "expected 'end of print statement'. (template line 1)"],
        id="template-syntax",
    ),
    pytest.param(
        "workspace:\n  mount_path: /opt/claude-docker/runtime\n",
        ["claude-docker.yaml:2: workspace.mount_path: '/opt/claude-docker/runtime' would cover /opt/claude-docker, "
         "which claude-docker or the system needs"],
        id="workspace-over-runtime",
    ),
    pytest.param(
        "network:\n  firewall: true\nnetwork:\n  firewall: false\n",
        ["claude-docker.yaml:3: duplicate key 'network' (first defined on line 1)"],
        id="duplicate-key",
    ),
    pytest.param(
        "- a\n- b\n",
        ["claude-docker.yaml:1: the file must be a mapping of keys, not a list"],
        id="not-a-mapping",
    ),
    pytest.param(
        "version: 1\nx: \x01\n",
        ["claude-docker.yaml:2: character U+0001 is not allowed in YAML"],
        id="control-character",
    ),
    pytest.param(
        "claude:\n  env:\n    TOKEN: ${MISSING_TOKEN}\n",
        ["claude-docker.yaml:3: claude.env.TOKEN: variable MISSING_TOKEN is not set; set MISSING_TOKEN in the "
         "environment or in the env file ($CLAUDE_DOCKER_HOME/.env)"],
        id="unset-variable",
    ),
    pytest.param(
        "claude:\n  env:\n    X: \"cost $5\"\n",
        ["claude-docker.yaml:3: claude.env.X: a '$' must start ${NAME} or ${NAME:-default}; write $$ for a literal dollar sign"],
        id="lone-dollar",
    ),
    pytest.param(
        "extends: [pyhton]\n",
        ["claude-docker.yaml:1: extends[0]: built-in profile 'pyhton' does not exist; did you mean 'python'? "
         "(chain: claude-docker.yaml -> pyhton)"],
        id="missing-builtin",
    ),
]


@pytest.mark.parametrize("text, expected", INVALID)
def test_invalid_config_messages(project, text, expected):
    assert problems_for(project, text) == expected


def test_all_problems_reported_at_once_across_files(project):
    got = problems_for(
        project,
        "extends: [./team.yaml]\nnetwork:\n  alowed_domains: []\nimage:\n  apt_packages: [\"a b\"]\n",
        files={"team.yaml": "network:\n  firewall: maybe\n"},
    )
    assert got == [
        "team.yaml:2: network.firewall: expected true or false, got text (\"maybe\")",
        "claude-docker.yaml:3: network.alowed_domains: unknown key 'alowed_domains'; did you mean 'allowed_domains'?",
        "claude-docker.yaml:5: image.apt_packages[0]: \"a b\" is not a valid Debian package name: expected "
        "lower-case letters, digits and + - . (optionally =version), e.g. ripgrep",
    ]


def test_missing_profile_file_shows_chain(project):
    got = problems_for(
        project,
        "extends: [./a.yaml]\n",
        files={"a.yaml": "extends:\n  - ./nope.yaml\n"},
    )
    assert got == [
        "a.yaml:2: extends[0]: profile file nope.yaml does not exist "
        "(chain: claude-docker.yaml -> a.yaml -> nope.yaml)"
    ]


def test_cycle_shows_chain(project):
    got = problems_for(
        project,
        "extends: [./a.yaml]\n",
        files={"a.yaml": "extends: [./b.yaml]\n", "b.yaml": "extends: [./a.yaml]\n"},
    )
    assert got == [
        "a.yaml:1: extends: profiles extend each other in a cycle: claude-docker.yaml -> a.yaml "
        "-> b.yaml -> a.yaml"
    ]


def test_self_cycle(project):
    got = problems_for(project, "extends: [./claude-docker.yaml]\n")
    assert got == [
        "claude-docker.yaml:1: extends: profiles extend each other in a cycle: claude-docker.yaml -> "
        "claude-docker.yaml"
    ]


def test_unset_variable_in_profile_names_that_file(project):
    got = problems_for(
        project,
        "extends: [./team.yaml]\n",
        files={"team.yaml": "notifier:\n  webhooks:\n    - url: ${HOOK_URL}\n"},
    )
    assert got == [
        "team.yaml:3: notifier.webhooks[0].url: variable HOOK_URL is not set; set HOOK_URL in the environment "
        "or in the env file ($CLAUDE_DOCKER_HOME/.env)"
    ]


YAML_PIECES = [
    "network:\n", "  allowed_domains: [", "a.com", "]\n", "claude:\n", "  env:\n", "    A: ", "${X}", "$$", "$",
    "- ", "? ", ": ", "{", "}", "[", "]", "&a ", "*a", "!!python/object:os.system ", "'", '"', "\t", "#", "\n",
    "version: ", "1", "on", "yes", "null", "~", "---\n", "...\n", "extends: ", "./x.yaml", "python", "\x00", "é",
    "notifier:\n  twilio:\n    to: ", "1.5", "true", "<<: ", "!!binary ", "%YAML 1.1\n",
]


@settings(max_examples=examples(150), deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@example(text="? network:\n")  # a mapping as a key
@example(text="? [a]\n: 1\n")
@example(text="notifier:\n  twilio:\n    to: !!binary ")
@example(text="image:\n  claude_code_version: !!set {a}\n")
@given(text=st.lists(
    st.sampled_from(YAML_PIECES) | st.text(st.characters(blacklist_categories=("Cs",)), max_size=3), max_size=25
).map("".join))
def test_arbitrary_text_never_shows_a_traceback(project, text):
    path = project / "claude-docker.yaml"
    path.write_text(text, encoding="utf-8")
    try:
        load_config(str(path), cwd=project, environ={"X": "1"})
    except ConfigError as error:
        assert error.problems and all(problem.file and problem.message for problem in error.problems)


def test_merged_problem_points_at_the_child_file_and_its_own_index(project):
    (project / "data").mkdir()
    got = problems_for(
        project,
        "extends: [./team.yaml]\nfilesystem:\n  mounts:\n    - {source: ./data}\n",
        files={"team.yaml": "filesystem:\n  mounts:\n    - {source: ./data, target: /data}\n"},
    )
    assert got == ["claude-docker.yaml:4: filesystem.mounts[0]: missing required key 'target'"]


def test_yaml_syntax_error_names_file_and_line(project):
    (got,) = problems_for(project, "network:\n  allowed_domains: [a.com\n")
    # The parser's own words differ between libyaml and pure-Python PyYAML; the location does not.
    # The line and column are where the problem starts (the unclosed bracket), not where the
    # parser noticed it (the end of the file).
    assert got.startswith("claude-docker.yaml:2: not valid YAML at column 20: while parsing a flow sequence")
    assert got.endswith("(noticed at line 3, column 1)")


def test_yaml_syntax_error_at_one_place_names_its_column(project):
    (got,) = problems_for(project, "network:\n  firewall: true\n   bad: indent: here\n")
    assert got.startswith("claude-docker.yaml:3: not valid YAML at column ")
    assert "noticed" not in got


# A value that ends in a line break. In the schema, a pattern's closing `$` is ECMA-262's (the end
# of the text); Python's `re`, which jsonschema uses, lets `$` match before a final "\n" too.
TRAILING_NEWLINE = {
    "image.base": 'image: {base: "debian:bookworm\\n"}',
    "image.apt_packages[0]": 'image: {apt_packages: ["jq\\n"]}',
    "network.allowed_domains[0]": 'network: {allowed_domains: ["example.com\\n"]}',
    "network.git_credential.host": 'network: {git_credential: {host: "github.com\\n", token_variable: GH_TOKEN}}',
    "workspace.mount_path": 'workspace: {mount_path: "/work\\n"}',
    "claude.env.EDITOR": 'claude: {env: {EDITOR: "vim\\n"}}',
    "claude.mcp_servers.docs.command": 'claude: {mcp_servers: {docs: {command: "npx\\n"}}}',
    "notifier.twilio.to[0]": (
        'notifier: {twilio: {account_sid: AC00000000000000000000000000000000, auth_token: t,'
        ' from: "+15005550006", to: ["+15551234567\\n"]}}'
    ),
    "notifier.webhooks[0].headers": 'notifier: {webhooks: [{url: "https://h.example/x", headers: {"X-Key\\n": v}}]}',
}


@pytest.mark.parametrize("key_path", sorted(TRAILING_NEWLINE))
def test_a_value_ending_in_a_line_break_is_refused(project, key_path):
    """A line break closing a value would end a line of the Dockerfile, dnsmasq.conf or
    haproxy.cfg early: every pattern is anchored at the very end of the text."""
    found = problems_for(project, TRAILING_NEWLINE[key_path] + "\n")
    assert any(key_path in problem for problem in found), found
