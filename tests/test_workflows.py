"""The GitHub workflows are valid against the workflow schema (offline copy)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent


def test_workflow_files_validate_against_the_github_schema():
    # check-jsonschema is installed in the same virtualenv as pytest
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}
    result = subprocess.run([str(PROJECT / ".ci" / "check-workflows")], capture_output=True,
                            text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok" in result.stdout.lower()


def test_a_broken_workflow_is_refused(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text("on: push\njobs:\n  test:\n    steps: []\n")  # no runs-on
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}
    result = subprocess.run([str(PROJECT / ".ci" / "check-workflows"), str(broken)],
                            capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode != 0


def _yaml(path: Path) -> dict:
    import yaml
    return yaml.safe_load(path.read_text())


PREPARE = "./.github/actions/prepare-deploy"


def test_the_shared_deploy_action_validates_against_the_actions_schema():
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}
    result = subprocess.run(["check-jsonschema", "--builtin-schema", "vendor.github-actions",
                             str(PROJECT / PREPARE / "action.yml")],
                            capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_pulumi_job_reaches_the_host_over_ssh_and_has_the_policy_pack():
    """Without DOCKER_HOST the Docker provider deploys onto the CI runner itself."""
    pulumi_jobs = 0
    for workflow in sorted((PROJECT / ".github" / "workflows").glob("*.yml")):
        for name, job in _yaml(workflow)["jobs"].items():
            uses = [step.get("uses", "") for step in job.get("steps", [])]
            pulumi = [i for i, u in enumerate(uses) if u.startswith("pulumi/actions")]
            if not pulumi:
                continue
            pulumi_jobs += 1
            assert PREPARE in uses[:pulumi[0]], f"{workflow.name} {name}: no {PREPARE} before pulumi"
            step = job["steps"][uses.index(PREPARE)]
            assert set(step["with"]) == {"deploy-host", "deploy-ssh-key", "deploy-known-hosts"}
            assert all("secrets." in value for value in step["with"].values())
            for i in pulumi:
                assert job["steps"][i]["with"]["policyPacks"] == "policy"
    assert pulumi_jobs == 3  # deploy dev, deploy prod, preview

    action = _yaml(PROJECT / PREPARE / "action.yml")
    script = "\n".join(step.get("run", "") for step in action["runs"]["steps"])
    assert "bin/deploy-ssh-setup" in script
    policy_venv = _yaml(PROJECT / "policy" / "PulumiPolicy.yaml")["runtime"]["options"]["virtualenv"]
    program_venv = _yaml(PROJECT / "Pulumi.yaml")["runtime"]["options"]["virtualenv"]
    assert f"python -m venv policy/{policy_venv}" in script
    assert f"policy/{policy_venv}/bin/pip install -r policy/requirements.txt" in script
    assert f"python -m venv {program_venv}" in script


def test_pull_requests_run_the_readme_test_command():
    steps = _yaml(PROJECT / ".github" / "workflows" / "pr.yml")["jobs"]["tests"]["steps"]
    runs = [step.get("run", "") for step in steps]
    assert any(run.endswith("bin/test") and "CI=true" in run for run in runs), runs
    assert not any("--ignore" in run or "pytest" in run for run in runs), runs


def test_a_sites_stack_deploys_after_the_platform_stack_that_serves_it():
    """A sites stack's containers join a network its edge stack declares: deploying
    it first fails on a new host (the network does not exist yet)."""
    from config.loading import StackFile, stack_names

    jobs = _yaml(PROJECT / ".github" / "workflows" / "deploy.yml")["jobs"]
    job_of = {step["with"]["stack-name"]: name for name, job in jobs.items()
              for step in job["steps"] if step.get("uses", "").startswith("pulumi/actions")}

    def after(job: str) -> set[str]:
        needs = jobs[job].get("needs", [])
        needs = [needs] if isinstance(needs, str) else needs
        return set(needs).union(*(after(n) for n in needs)) if needs else set()

    served = {stack: StackFile(stack).config().edge_stack for stack in stack_names()
              if stack in job_of and StackFile(stack).config().role == "sites"}
    assert served, "no sites stack is deployed by the workflow"
    for stack, edge in served.items():
        assert job_of[edge] in after(job_of[stack]), f"{stack} deploys without waiting for {edge}"
