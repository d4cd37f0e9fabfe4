"""`claude-docker kube`: render the sandbox as Kubernetes manifests."""

from __future__ import annotations

from pathlib import Path

import click

from .options import file_option, output_dir_option


@click.command(context_settings={"ignore_unknown_options": True})
@file_option
@output_dir_option("Directory to write the manifests into (created if missing).")
@click.option("--name", default=None, help="Name of the Pod or Job (default: claude-docker-<project>).")
@click.option("-n", "--namespace", default=None, help="Namespace to put in the manifests (default: none, kubectl's current).")
@click.option("--secret", default="claude-docker", show_default=True,
              help="Secret holding ANTHROPIC_API_KEY (or CLAUDE_CODE_OAUTH_TOKEN) and MCP tokens, by variable name.")
@click.option("--image", default=None, help="Image reference (default: the tag `claude-docker build` gives this config).")
@click.option("--workspace-claim", default=None, metavar="CLAIM", help="PersistentVolumeClaim mounted as the workspace.")
@click.option("--git-url", default=None, metavar="URL", help="Clone this repository into an empty workspace instead.")
@click.option("--git-ref", default=None, metavar="REF", help="Branch or tag to clone (with --git-url).")
@click.option("--state-claim", default=None, metavar="CLAIM",
              help="PersistentVolumeClaim for the agent's home: login state, history, caches (default: an emptyDir).")
@click.option("--deadline", "deadline_seconds", default=3600, show_default=True, type=click.IntRange(min=1),
              help="A headless Job's activeDeadlineSeconds.")
@click.argument("claude_args", nargs=-1, type=click.UNPROCESSED)
def kube(
    config_file: str | None,
    output_dir: Path,
    name: str | None,
    namespace: str | None,
    secret: str,
    image: str | None,
    workspace_claim: str | None,
    git_url: str | None,
    git_ref: str | None,
    state_claim: str | None,
    deadline_seconds: int,
    claude_args: tuple[str, ...],
) -> None:
    """Render the sandbox as Kubernetes manifests: a ConfigMap and a Pod, or a Job.

    Arguments after `--` go to Claude. With `-p`/`--print` the result is a Job (headless:
    restartPolicy Never, backoffLimit 0, --deadline); otherwise an interactive Pod to attach
    to. The Pod's firewall container sets up the same egress firewall as `up` before the agent
    container may start; credentials come from the Secret named by --secret, never inline; the
    workspace is a claim or a git clone, never a host path. See docs/kubernetes.md.

    \b
    Examples:
      claude-docker kube -o k8s/ --workspace-claim my-repo -- -p "fix the failing test"
      kubectl create secret generic claude-docker --from-literal=ANTHROPIC_API_KEY=sk-ant-…
      kubectl apply -f k8s/ && kubectl logs -f job/claude-docker-myproject-1a2b3c4d -c agent
      claude-docker kube -o k8s/ --git-url https://github.com/me/repo.git --state-claim claude-home
    """
    from ..artifacts import write_artifacts
    from ..config.pipeline import load_config
    from ..kubernetes import KubeOptions, render_manifests

    cfg = load_config(config_file).config
    options = KubeOptions(
        name=name,
        namespace=namespace,
        secret=secret,
        image=image,
        workspace_claim=workspace_claim,
        git_url=git_url,
        git_ref=git_ref,
        state_claim=state_claim,
        deadline_seconds=deadline_seconds,
        claude_args=tuple(claude_args),
    )
    manifests = render_manifests(cfg, options)
    for warning in manifests.warnings:
        click.secho(f"warning: {warning}", fg="yellow", err=True)
    output_dir.mkdir(parents=True, exist_ok=True)
    for path in write_artifacts(manifests.dump(), output_dir):
        click.echo(str(path))
    keys = ", ".join(["ANTHROPIC_API_KEY or CLAUDE_CODE_OAUTH_TOKEN", *manifests.secret_keys])
    click.echo(f"the Secret {secret!r} must hold: {keys}", err=True)
    click.echo(f"{manifests.kind.lower()}/{manifests.name}: apply with `kubectl apply -f {output_dir}`", err=True)


COMMANDS: list[click.Command] = [kube]
