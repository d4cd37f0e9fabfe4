"""The features stage: what each part of the sandbox (workspace, persistence, firewall, model
endpoint, image, Claude Code's own files, approval of workspace config) adds to a run."""
