"""ui/template.yaml and ui/Dockerfile read as data: what cfn-lint and checkov cannot tell (checkov does not expand the
allowlist's ForEach), and that the Lambda image carries nothing of the UI."""

from __future__ import annotations

import re

import pytest
import yaml

from tests.conftest import REPO_ROOT
from tests.test_score import in_build_context
from tests.test_template import SKIP_ID, _CfnLoader


@pytest.fixture(scope="module")
def resources() -> dict:
    return yaml.load((REPO_ROOT / "ui" / "template.yaml").read_text(), Loader=_CfnLoader)["Resources"]


def _of_type(resources: dict, kind: str) -> list[dict]:
    """The plain resources of one type (the ForEach entry is a list, not a resource)."""
    return [r for r in resources.values() if isinstance(r, dict) and r.get("Type") == kind]


def test_the_task_role_may_only_invoke_predict_and_explain(resources):
    (policy,) = resources["TaskRole"]["Properties"]["Policies"]
    (statement,) = policy["PolicyDocument"]["Statement"]
    assert statement["Effect"] == "Allow"
    assert statement["Action"] == "execute-api:Invoke"
    routes = [r["Fn::Sub"].rsplit("${StageName}/", 1)[1] for r in statement["Resource"]]
    assert routes == ["POST/predict", "POST/explain"]
    assert "ManagedPolicyArns" not in resources["TaskRole"]["Properties"]


def test_only_the_allowlisted_ranges_reach_the_load_balancer_on_https(resources):
    identifier, cidrs, body = resources["Fn::ForEach::Allowlist"]
    assert cidrs == {"Ref": "AllowedCidrs"}
    (rule,) = body.values()
    props = rule["Properties"]
    assert rule["Type"] == "AWS::EC2::SecurityGroupIngress"
    assert (props["IpProtocol"], props["FromPort"], props["ToPort"]) == ("tcp", 443, 443)
    assert props["CidrIp"] == {"Ref": identifier}
    assert "SecurityGroupIngress" not in resources["LoadBalancerSecurityGroup"]["Properties"]
    ingress = _of_type(resources, "AWS::EC2::SecurityGroupIngress")
    assert [r["Properties"]["SourceSecurityGroupId"] for r in ingress] == [
        {"Fn::GetAtt": ["LoadBalancerSecurityGroup", "GroupId"]}
    ]  # the tasks: from the load balancer only


def test_https_only_with_the_certificate_and_streamlits_health_check(resources):
    listeners = [r["Properties"] for r in _of_type(resources, "AWS::ElasticLoadBalancingV2::Listener")]
    assert [(p["Protocol"], p["Port"]) for p in listeners] == [("HTTPS", 443)]
    assert listeners[0]["Certificates"] == [{"CertificateArn": {"Ref": "CertificateArn"}}]
    assert resources["TargetGroup"]["Properties"]["HealthCheckPath"] == "/_stcore/health"
    (container,) = resources["TaskDefinition"]["Properties"]["ContainerDefinitions"]
    assert "/_stcore/health" in " ".join(container["HealthCheck"]["Command"])
    assert container["LogConfiguration"]["LogDriver"] == "awslogs"


def test_the_tasks_run_in_private_subnets_without_public_ips(resources):
    network = resources["Service"]["Properties"]["NetworkConfiguration"]["AwsvpcConfiguration"]
    assert network == {
        "AssignPublicIp": "DISABLED",
        "Subnets": {"Ref": "PrivateSubnetIds"},
        "SecurityGroups": [{"Ref": "TaskSecurityGroup"}],
    }
    assert resources["Service"]["Properties"]["LaunchType"] == "FARGATE"


def test_every_checkov_skip_has_its_reason(resources):
    skips = [
        (name, skip)
        for name, r in resources.items()
        if isinstance(r, dict)
        for skip in r.get("Metadata", {}).get("checkov", {}).get("skip", [])
    ]
    assert skips
    for name, skip in skips:
        assert SKIP_ID.fullmatch(skip["id"]), name
        assert len(skip["comment"].split()) >= 12, (name, skip)


def test_every_file_the_ui_image_copies_is_in_its_own_build_context():
    dockerfile = (REPO_ROOT / "ui" / "Dockerfile").read_text()
    own = (REPO_ROOT / "ui" / "Dockerfile.dockerignore").read_text().splitlines()
    serving = (REPO_ROOT / ".dockerignore").read_text().splitlines()
    for line in re.findall(r"^COPY (.+)$", dockerfile, re.MULTILINE):
        for source in line.split()[:-1]:
            assert (REPO_ROOT / source).exists(), source
            assert in_build_context(source, own), f"ui/Dockerfile.dockerignore leaves out {source}"
    assert not in_build_context("ui/app.py", serving)  # the serving image's context keeps the UI out


def test_the_lambda_image_and_its_requirements_carry_nothing_of_the_ui():
    runtime = (REPO_ROOT / "requirements-runtime.txt").read_text()
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    for name in ("streamlit", "botocore", "pyarrow", "requirements-ui"):
        assert name not in runtime
        assert name not in dockerfile
    assert not re.search(r"^COPY ui/", dockerfile, re.MULTILINE)
