"""`claude-docker kube`: render the sandbox as Kubernetes manifests."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from .options import file_option

if TYPE_CHECKING:
    from ..config.model import Config


@click.command(context_settings={"ignore_unknown_options": True})
@file_option
@click.option("-o", "--output", "output_dir", default=None, type=click.Path(file_okay=False, path_type=Path),
              help="Directory to write the manifests into (created if missing); required unless --notifier-config.")
@click.option("--name", default=None, help="Name of the Pod or Job (default: claude-docker-<project>).")
@click.option("-n", "--namespace", default=None, help="Namespace to put in the manifests (default: none, kubectl's current).")
@click.option("--secret", default="claude-docker", show_default=True,
              help="Secret holding ANTHROPIC_API_KEY (or CLAUDE_CODE_OAUTH_TOKEN) and MCP tokens, by variable name.")
@click.option("--image", default=None, help="Image reference (default: the tag `claude-docker build` gives this config).")
@click.option("--notifier-secret", default="claude-docker-notifier", show_default=True,
              help="Secret holding the notifier section (key notifier.json), read by the notifier container only.")
@click.option("--notifier-image", default=None,
              help="The notifier container's image (default: the tag `--build` gives it, claude-docker-notifier:<hash>).")
@click.option("--notifier-config", is_flag=True,
              help="Print the notifier Secret's notifier.json (credentials included) to stdout and write nothing.")
@click.option("--build", is_flag=True,
              help="Build the images the manifests name with the local engine (the sandbox image, and the notifier image "
                   "when a notifier is configured), to push to the cluster's registry.")
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
    output_dir: Path | None,
    name: str | None,
    namespace: str | None,
    secret: str,
    image: str | None,
    notifier_secret: str,
    notifier_image: str | None,
    notifier_config: bool,
    build: bool,
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
    workspace is a claim or a git clone, never a host path. With a Twilio or webhook notifier, a
    notifier container (its own uid, its own Secret, let out to the notifier's endpoints only)
    delivers the hooks' events. See docs/kubernetes.md.

    \b
    Examples:
      claude-docker kube -o k8s/ --workspace-claim my-repo -- -p "fix the failing test"
      kubectl create secret generic claude-docker --from-literal=ANTHROPIC_API_KEY=sk-ant-…
      kubectl apply -f k8s/ && kubectl logs -f job/claude-docker-myproject-1a2b3c4d -c agent
      claude-docker kube -o k8s/ --git-url https://github.com/me/repo.git --state-claim claude-home
      claude-docker kube --notifier-config | kubectl create secret generic claude-docker-notifier \
          --from-file=notifier.json=/dev/stdin
    """
    from ..artifacts import write_artifacts
    from ..config.pipeline import load_config
    from ..kubernetes import KubeOptions, notifier_secret_data, render_manifests

    cfg = load_config(config_file).config
    if notifier_config:
        click.echo(notifier_secret_data(cfg))
        return
    if output_dir is None:
        raise click.UsageError("Missing option '-o' / '--output'.")
    if build:
        image, notifier_image = _build_images(cfg, image, notifier_image)
    options = KubeOptions(
        name=name,
        namespace=namespace,
        secret=secret,
        image=image,
        notifier_secret=notifier_secret,
        notifier_image=notifier_image,
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
    if manifests.notifier_endpoints:
        click.echo(
            f"the Secret {notifier_secret!r} must hold notifier.json (`claude-docker kube --notifier-config`); "
            f"the notifier container may reach {', '.join(manifests.notifier_endpoints)}",
            err=True,
        )
    click.echo(f"{manifests.kind.lower()}/{manifests.name}: apply with `kubectl apply -f {output_dir}`", err=True)


def _build_images(cfg: Config, image: str | None, notifier_image: str | None) -> tuple[str, str | None]:
    """Build the sandbox image (when missing) and, with a notifier, the notifier image on it."""
    from ..engine import Engine
    from ..features.image import proxy_build_args
    from ..imagebuild import ensure_image
    from ..kubernetes import kube_notifier, notifier_build_context, notifier_image_tag

    engine = Engine.connect()
    if image is None:
        result = ensure_image(engine, cfg.image, cfg.network.proxy)
        image = result.tag
        click.echo(f"{image}: {'built' if result.built else 'current'}", err=True)
    if kube_notifier(cfg) is not None and notifier_image is None:
        notifier_image = notifier_image_tag(image)
        if engine.image_labels(notifier_image) is None:
            engine.build(notifier_build_context(image), tag=notifier_image, buildargs=proxy_build_args(cfg.network.proxy))
            click.echo(f"{notifier_image}: built", err=True)
        else:
            click.echo(f"{notifier_image}: current", err=True)
    return image, notifier_image


COMMANDS: list[click.Command] = [kube]
