"""template.yaml's infrastructure choices, read as data: what checkov and cfn-lint cannot tell (that a skip says why,
that the VPC policy comes only with the VPC, that the defaults are the original deployment's, that the A/B
parameters accept exactly the documented format)."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from tests.conftest import REPO_ROOT

SKIP_ID = re.compile(r"CKV2?_AWS_\d+")


class _CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short tags, read as their long forms (!Ref x -> {"Ref": x}, !If -> Fn::If)."""


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict:
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {"Ref" if suffix == "Ref" else "Condition" if suffix == "Condition" else f"Fn::{suffix}": value}


_CfnLoader.add_multi_constructor("!", _tag)


@pytest.fixture(scope="module")
def template() -> dict:
    return yaml.load((REPO_ROOT / "template.yaml").read_text(), Loader=_CfnLoader)


@pytest.fixture(scope="module")
def function(template) -> dict:
    return template["Resources"]["DefectFunction"]["Properties"]


def _skips(template: dict) -> list[tuple[str, str, str]]:
    return [
        (name, skip["id"], skip.get("comment", ""))
        for name, resource in template["Resources"].items()
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
    ]


def test_every_checkov_skip_is_inline_with_its_reason(template):
    skips = _skips(template)
    assert skips, "the template has no inline checkov skips"
    for name, check, comment in skips:
        assert SKIP_ID.fullmatch(check), f"{name}: {check!r} is not a checkov check id"
        assert len(comment.split()) >= 12, f"{name}: the skip of {check} needs a reason, got {comment!r}"


def test_the_skips_the_function_needs_are_there(template):
    by_resource = {(name, check) for name, check, _ in _skips(template)}
    assert {
        ("DefectFunction", "CKV_AWS_116"),  # DLQ: synchronous invocations only
        ("DefectFunction", "CKV_AWS_173"),  # KMS for environment variables: no secrets
        ("DefectFunction", "CKV_AWS_117"),  # VPC: only when subnets are given
        ("PredictApi", "CKV_AWS_120"),  # caching: POST predictions
    } <= by_resource


def test_original_deployment_defaults(template):
    params = template["Parameters"]
    assert params["FunctionName"]["Default"] == "diecasting-predict-t1"
    assert params["ReservedConcurrency"]["Default"] == 100
    assert params["MemorySize"]["Default"] == 1024
    makefile = (REPO_ROOT / "Makefile").read_text()
    assert re.search(r"^AWS_REGION \?= ap-northeast-2$", makefile, re.M)
    assert re.search(r"^ECR_REPO \?= diecasting-predict-t1$", makefile, re.M)


def test_function_is_traced_capped_and_sized_by_parameters(function):
    assert function["Tracing"] == "Active"
    assert function["ReservedConcurrentExecutions"] == {"Ref": "ReservedConcurrency"}
    assert function["MemorySize"] == {"Ref": "MemorySize"}
    assert function["FunctionName"] == {"Ref": "FunctionName"}
    assert function["Timeout"] == 10


def test_vpc_and_its_policy_come_only_with_the_subnets(template, function):
    condition, in_vpc, outside = function["VpcConfig"]["Fn::If"]
    assert condition == "InVpc"
    assert in_vpc == {"SubnetIds": {"Ref": "SubnetIds"}, "SecurityGroupIds": {"Ref": "SecurityGroupIds"}}
    assert outside == {"Ref": "AWS::NoValue"}
    # An explicit role: SAM would attach the VPC policy whenever VpcConfig is present, even as an !If
    assert function["Role"] == {"Fn::GetAtt": ["DefectFunctionRole", "Arn"]}
    policies = template["Resources"]["DefectFunctionRole"]["Properties"]["ManagedPolicyArns"]
    vpc = [p for p in policies if "AWSLambdaVPCAccessExecutionRole" in json.dumps(p)]
    assert len(vpc) == 1
    assert vpc[0]["Fn::If"][0] == "InVpc"
    assert any("AWSXrayWriteOnlyAccess" in json.dumps(p) for p in policies), "active tracing needs X-Ray writes"
    for name in ("SubnetIds", "SecurityGroupIds"):
        assert template["Parameters"][name] == {**template["Parameters"][name], "Type": "CommaDelimitedList"}
        assert template["Parameters"][name]["Default"] == ""
    assert set(template["Rules"]) == {"SubnetsNeedSecurityGroups", "SecurityGroupsNeedSubnets"}


def test_snapstart_is_a_parameter_off_by_default(template, function):
    assert template["Parameters"]["SnapStart"]["Default"] == "false"
    assert function["SnapStart"] == {
        "Fn::If": ["SnapStartOn", {"ApplyOn": "PublishedVersions"}, {"Ref": "AWS::NoValue"}]
    }
    assert "AutoPublishAlias" in function  # SnapStart applies to published versions only


def test_api_access_logs_with_retention_and_tracing(template):
    api = template["Resources"]["PredictApi"]["Properties"]
    assert api["TracingEnabled"] is True
    assert api["AccessLogSetting"]["DestinationArn"] == {"Fn::GetAtt": ["ApiAccessLogGroup", "Arn"]}
    assert template["Resources"]["ApiAccessLogGroup"]["Properties"]["RetentionInDays"] > 0
    record = json.loads(api["AccessLogSetting"]["Format"])  # one JSON object per request
    assert {"requestId", "status", "integrationLatency", "caller", "xrayTraceId"} <= set(record)


def test_ab_and_shadow_parameters_reach_the_environment(template, function):
    env = function["Environment"]["Variables"]
    assert env["SHADOW_MODEL_VERSION"] == {
        "Fn::If": ["HasShadow", {"Ref": "ShadowModelVersion"}, {"Ref": "AWS::NoValue"}]
    }
    assert env["AB_SPLIT"] == {"Fn::If": ["HasAbSplit", {"Ref": "AbSplit"}, {"Ref": "AWS::NoValue"}]}
    assert template["Parameters"]["ShadowModelVersion"]["Default"] == ""
    assert template["Parameters"]["AbSplit"]["Default"] == ""


@pytest.mark.parametrize("value", ["", "v1.1:0.10", "v2:0.5", "v1.2.3:0.001", "v1.1:0.99"])
def test_ab_split_pattern_accepts(template, value):
    assert re.fullmatch(template["Parameters"]["AbSplit"]["AllowedPattern"], value)


# The handler needs 0 < share < 1 (runtime/routing.py): 0, 1 and 0.0 would fail INIT after a deployment started.
@pytest.mark.parametrize(
    "value",
    ["v1.1", "1.1:0.1", "v1.1:1", "v1.1:1.0", "v1.1:0", "v1.1:0.0", "v1.1:1.5", "v1.1:-0.1", "v1.1:0.1x", " v1.1:0.1"],
)
def test_ab_split_pattern_refuses(template, value):
    assert not re.fullmatch(template["Parameters"]["AbSplit"]["AllowedPattern"], value)


@pytest.mark.parametrize(("value", "ok"), [("", True), ("v1.1", True), ("v10", True), ("1.1", False), ("../v1", False)])
def test_shadow_version_pattern(template, value, ok):
    assert bool(re.fullmatch(template["Parameters"]["ShadowModelVersion"]["AllowedPattern"], value)) is ok


# --- the contracts between processes (runtime/contracts.py), as the template states them ---------------------------


def _dashboard(template: dict) -> dict:
    """The dashboard's body as JSON, its ``${...}`` substitutions left as placeholders."""
    body = template["Resources"]["MonitoringDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    return json.loads(re.sub(r"\$\{[^}]+\}", "SUB", body))


def _metric_rows(dashboard: dict) -> list[list]:
    """Every plain metric row of the dashboard's widgets: [namespace, name, dimension, value, ...]."""
    rows = []
    for widget in dashboard["widgets"]:
        for row in widget["properties"].get("metrics", []):
            if isinstance(row[0], str):
                rows.append(row)
    return rows


def _annotation(dashboard: dict, label: str) -> float:
    [value] = [
        line["value"]
        for widget in dashboard["widgets"]
        for line in widget["properties"].get("annotations", {}).get("horizontal", [])
        if line["label"] == label
    ]
    return value


def test_the_f1_alarm_is_the_monitors_rule_f1s_interval_below_the_rollback_line(template):
    """The alarm reads the upper end of F1's interval, as the monitor's rollback does: a point estimate below the line
    is within noise on a quiet week."""
    from runtime import contracts

    alarm = template["Resources"]["ModelF1Alarm"]["Properties"]
    assert alarm["Namespace"] == contracts.METRIC_NAMESPACE
    assert alarm["MetricName"] == contracts.Metric.MODEL_F1_UPPER
    assert [d["Name"] for d in alarm["Dimensions"]] == [contracts.METRIC_DIMENSION]
    assert alarm["Threshold"] == contracts.ROLLBACK_F1
    assert alarm["ComparisonOperator"] == "LessThanThreshold"
    assert f"F1 significantly below {contracts.ROLLBACK_F1}" in alarm["AlarmDescription"]


def test_the_canary_alarms_are_the_rollback_lines(template):
    from runtime import contracts

    errors = template["Resources"]["AliasErrorRateAlarm"]["Properties"]
    [rate] = [m for m in errors["Metrics"] if m.get("ReturnData")]
    assert rate["Expression"].startswith("100 * errors /")  # a percentage
    assert errors["Threshold"] == pytest.approx(100 * contracts.ROLLBACK_ERROR_RATE)
    assert errors["ComparisonOperator"] == "GreaterThanThreshold"
    p95 = template["Resources"]["AliasLatencyP95Alarm"]["Properties"]
    assert (p95["Namespace"], p95["MetricName"], p95["ExtendedStatistic"]) == ("AWS/Lambda", "Duration", "p95")
    assert p95["Threshold"] == contracts.ROLLBACK_P95_MS  # Lambda's Duration is in milliseconds
    assert p95["ComparisonOperator"] == "GreaterThanThreshold"
    assert f"{contracts.ROLLBACK_P95_MS:g} ms" in p95["AlarmDescription"]
    assert f"{contracts.ROLLBACK_ERROR_RATE:.0%}".replace("%", " %") in errors["AlarmDescription"]


def test_the_dashboard_reads_the_contracts_metrics_and_lines(template):
    from runtime import contracts

    dashboard = _dashboard(template)
    names = {v for k, v in vars(contracts.Metric).items() if k.isupper()}
    ours = [row for row in _metric_rows(dashboard) if row[0] != "AWS/Lambda"]
    assert ours, "the dashboard shows none of the project's metrics"
    for row in ours:
        assert row[0] == contracts.METRIC_NAMESPACE, row
        assert row[1] in names, row
        assert row[2] == contracts.METRIC_DIMENSION, row
    assert {row[1] for row in ours} >= {
        contracts.Metric.MODEL_F1,
        contracts.Metric.MODEL_F1_UPPER,
        contracts.Metric.MAX_FEATURE_PSI,
    }
    assert _annotation(dashboard, f"rollback F1 {contracts.ROLLBACK_F1}") == contracts.ROLLBACK_F1
    assert _annotation(dashboard, f"rollback p95 {contracts.ROLLBACK_P95_MS:g} ms") == contracts.ROLLBACK_P95_MS
    markdown = dashboard["widgets"][0]["properties"]["markdown"]
    error_rate = f"{contracts.ROLLBACK_ERROR_RATE:.0%}".replace("%", " %")
    lines = f"error rate {error_rate}, p95 {contracts.ROLLBACK_P95_MS:g} ms, F1 {contracts.ROLLBACK_F1}"
    assert f"Rollback lines: {lines}." in markdown


VERSIONS = ["v1", "v1.0", "v1.1", "v10.2.3", "1.1", "v", "v1.", "v.1", "V1.0", "v1.0a", "v1_0", "../v1", " v1"]


@pytest.mark.parametrize("value", VERSIONS)
def test_the_version_parameters_accept_exactly_the_contracts_versions(template, value):
    from runtime.contracts import is_version

    shadow = template["Parameters"]["ShadowModelVersion"]["AllowedPattern"]
    split = template["Parameters"]["AbSplit"]["AllowedPattern"]
    assert bool(re.fullmatch(shadow, value)) is is_version(value)
    assert bool(re.fullmatch(split, f"{value}:0.5")) is is_version(value)


def test_the_template_names_no_issue_numbers():
    text = (REPO_ROOT / "template.yaml").read_text()
    assert not re.search(r"\bissue\s*#?\d+", text, re.IGNORECASE)


# --- the explain function (T2) -------------------------------------------------------------------------------------


def test_the_explain_function_is_its_own_image_behind_the_same_iam_api(template):
    resource = template["Resources"]["ExplainFunction"]
    props = resource["Properties"]
    assert resource["Condition"] == "ExplainOn"
    assert props["ImageUri"] == {"Ref": "ExplainImageUri"}
    routes = {(e["Properties"]["Path"], e["Properties"]["Method"]) for e in props["Events"].values()}
    assert routes == {("/explain", "post"), ("/importance", "get")}
    assert all(e["Properties"]["RestApiId"] == {"Ref": "PredictApi"} for e in props["Events"].values())
    assert template["Resources"]["PredictApi"]["Properties"]["Auth"]["DefaultAuthorizer"] == "AWS_IAM"
    assert props["Environment"]["Variables"]["METRIC_NAMESPACE"] != template["Resources"]["DefectFunction"][
        "Properties"
    ]["Environment"]["Variables"].get("METRIC_NAMESPACE", "DiecastT1")


def test_the_explain_routes_are_the_apps(template):
    from serving import http

    props = template["Resources"]["ExplainFunction"]["Properties"]
    declared = {e["Properties"]["Path"]: e["Properties"]["Method"].upper() for e in props["Events"].values()}
    assert declared == http.EXPLAIN_ROUTES


def test_the_explain_function_has_its_log_group_alarms_and_the_same_canary(template):
    resources = template["Resources"]
    props = resources["ExplainFunction"]["Properties"]
    assert props["LoggingConfig"]["LogGroup"] == {"Ref": "ExplainFunctionLogGroup"}
    assert resources["ExplainFunctionLogGroup"]["Properties"]["LogGroupName"] == {
        "Fn::Sub": "/aws/lambda/${ExplainFunctionName}"
    }
    predict = resources["DefectFunction"]["Properties"]
    assert props["AutoPublishAlias"] == predict["AutoPublishAlias"] == "live"
    assert props["DeploymentPreference"]["Type"] == predict["DeploymentPreference"]["Type"]
    alarms = [a["Ref"] for a in props["DeploymentPreference"]["Alarms"]]
    assert alarms == ["ExplainAliasErrorRateAlarm", "ExplainAliasLatencyP95Alarm"]
    errors, mine = (resources[n]["Properties"] for n in ("AliasErrorRateAlarm", "ExplainAliasErrorRateAlarm"))
    assert mine["Threshold"] == errors["Threshold"]
    assert [m.get("Expression") for m in mine["Metrics"]] == [m.get("Expression") for m in errors["Metrics"]]
    for name in alarms:
        dims = json.dumps(resources[name]["Properties"])
        assert "ExplainFunction" in dims
        assert '"DefectFunction"' not in dims
