"""The real awscli v1 (pinned) against drover: a solid subset of the registry commands, their
errors and exit codes, awscli's own pagination (--page-size, --max-items, --starting-token),
and the README walkthrough run step by step."""

import json
import re
import subprocess

from drover_proc import REPO

from conftest import AWSCLI_SERVICE_ERROR_RC, start_drover, stop_drover

# --- things -----------------------------------------------------------------------------------


def test_cli_thing_lifecycle(drover):
    name = drover.name("cli")
    out = drover.aws("create-thing", "--thing-name", name,
                     "--attribute-payload", '{"attributes":{"app_version":"1.0","site":"lab"}}').json
    assert out["thingName"] == name
    assert out["thingArn"] == drover.arn("thing", name)
    thing_id = out["thingId"]

    d = drover.aws("describe-thing", "--thing-name", name).json
    assert d["attributes"] == {"app_version": "1.0", "site": "lab"}
    assert d["version"] == 1 and d["thingId"] == thing_id

    res = drover.aws("update-thing", "--thing-name", name,
                     "--attribute-payload", '{"attributes":{"app_version":"2.0"},"merge":true}')
    assert res.stdout.strip() in ("", "{}")
    d = drover.aws("describe-thing", "--thing-name", name).json
    assert d["attributes"] == {"app_version": "2.0", "site": "lab"} and d["version"] == 2

    drover.aws("update-thing", "--thing-name", name, "--attribute-payload", '{"attributes":{"only":"this"}}',
               "--expected-version", "2")
    d = drover.aws("describe-thing", "--thing-name", name).json
    assert d["attributes"] == {"only": "this"} and d["version"] == 3

    drover.aws("delete-thing", "--thing-name", name, "--expected-version", "3")
    drover.aws_error("describe-thing", "--thing-name", name, code="ResourceNotFoundException")


def test_cli_identical_create_is_idempotent(drover):
    name = drover.name("cliidem")
    a = drover.aws("create-thing", "--thing-name", name).json
    b = drover.aws("create-thing", "--thing-name", name).json
    assert a["thingId"] == b["thingId"]
    drover.aws_error("create-thing", "--thing-name", name, "--attribute-payload", '{"attributes":{"x":"1"}}',
                     code="ResourceAlreadyExistsException")
    assert drover.aws("describe-thing", "--thing-name", name).json.get("attributes", {}) == {}


def test_cli_errors_exit_255_and_change_nothing(drover):
    name = drover.name("clierr")
    drover.aws("create-thing", "--thing-name", name, "--attribute-payload", '{"attributes":{"a":"1"}}')

    res = drover.aws_error("update-thing", "--thing-name", name, "--attribute-payload", '{"attributes":{"a":"2"}}',
                           "--expected-version", "5", code="VersionConflictException")
    assert "UpdateThing" in res.stderr
    drover.aws_error("delete-thing", "--thing-name", name, "--expected-version", "9", code="VersionConflictException")
    drover.aws_error("update-thing", "--thing-name", name, "--attribute-payload", '{"attributes":{"a":"has space"}}',
                     code="InvalidRequestException")
    d = drover.aws("describe-thing", "--thing-name", name).json
    assert d["attributes"] == {"a": "1"} and d["version"] == 1

    drover.aws_error("create-thing", "--thing-name", "bad!name", code="InvalidRequestException")
    drover.aws_error("create-thing", "--thing-name", "x" * 129, code="InvalidRequestException")
    drover.aws_error("describe-thing", "--thing-name", drover.name("ghost"), code="ResourceNotFoundException")
    drover.aws_error("update-thing", "--thing-name", drover.name("ghost"), "--attribute-payload",
                     '{"attributes":{"a":"1"}}', code="ResourceNotFoundException")
    drover.aws_error("create-thing", "--thing-name", drover.name("typed"), "--thing-type-name",
                     drover.name("no-such-type"), code="ResourceNotFoundException")
    drover.aws_error("list-things", "--max-results", "251", code="InvalidRequestException")
    # deleting a missing thing succeeds, as on AWS
    drover.aws("delete-thing", "--thing-name", drover.name("never-existed"))


def test_cli_param_validation_and_usage_exit_codes(drover):
    # client-side checks of the pinned awscli (no request reaches the server)
    res = drover.aws("list-things", "--max-results", "0", expect_rc=255)
    assert "Parameter validation failed" in res.stderr
    res = drover.aws("describe-thing", expect_rc=2)
    assert "--thing-name" in res.stderr


def test_cli_list_things_filters(drover):
    tag = drover.name("clitag").replace("-", "_")
    a, b, c = drover.name("clif"), drover.name("clif"), drover.name("clif")
    drover.aws("create-thing", "--thing-name", a, "--attribute-payload", json.dumps({"attributes": {tag: "blue"}}))
    drover.aws("create-thing", "--thing-name", b, "--attribute-payload", json.dumps({"attributes": {tag: "blueish"}}))
    drover.aws("create-thing", "--thing-name", c, "--attribute-payload", json.dumps({"attributes": {tag: "red"}}))
    got = drover.aws("list-things", "--attribute-name", tag, "--attribute-value", "blue").json
    assert [t["thingName"] for t in got["things"]] == [a]
    got = drover.aws("list-things", "--attribute-name", tag, "--attribute-value", "blue",
                     "--use-prefix-attribute-value").json
    assert sorted(t["thingName"] for t in got["things"]) == sorted([a, b])
    got = drover.aws("list-things", "--attribute-name", tag, "--attribute-value", "blue",
                     "--query", "things[].thingName", output="text")
    assert got.stdout.split() == [a]


def test_cli_pagination(drover):
    tag = drover.name("clipage").replace("-", "_")
    names = sorted(drover.name("clip") for _ in range(7))
    for n in names:
        drover.aws("create-thing", "--thing-name", n, "--attribute-payload", json.dumps({"attributes": {tag: "1"}}))
    flt = ["--attribute-name", tag, "--attribute-value", "1"]

    # --page-size: awscli follows nextToken itself and prints everything
    got = drover.aws("list-things", *flt, "--page-size", "3").json
    assert sorted(t["thingName"] for t in got["things"]) == names
    assert "NextToken" not in got and "nextToken" not in got

    # --max-items / --starting-token
    seen, token, rounds = [], None, 0
    while True:
        args = ["list-things", *flt, "--max-items", "3"]
        if token:
            args += ["--starting-token", token]
        page = drover.aws(*args).json
        assert len(page["things"]) <= 3
        seen += [t["thingName"] for t in page["things"]]
        token = page.get("NextToken")
        rounds += 1
        if not token:
            break
        assert rounds < 10
    assert rounds == 3
    assert len(seen) == len(set(seen)) and sorted(seen) == names

    # both together, with a page size that does not divide the item count
    first = drover.aws("list-things", *flt, "--max-items", "4", "--page-size", "3").json
    assert len(first["things"]) == 4 and first["NextToken"]
    rest = drover.aws("list-things", *flt, "--max-items", "4", "--page-size", "3",
                      "--starting-token", first["NextToken"]).json
    assert len(rest["things"]) == 3 and "NextToken" not in rest
    assert sorted(t["thingName"] for t in first["things"] + rest["things"]) == names


# --- thing types ------------------------------------------------------------------------------


def test_cli_thing_types(drover):
    tt = drover.name("clitype")
    out = drover.aws("create-thing-type", "--thing-type-name", tt, "--thing-type-properties",
                     '{"thingTypeDescription":"light bulb","searchableAttributes":["wattage"]}').json
    assert out["thingTypeArn"] == drover.arn("thingtype", tt)
    d = drover.aws("describe-thing-type", "--thing-type-name", tt).json
    assert d["thingTypeProperties"] == {"thingTypeDescription": "light bulb", "searchableAttributes": ["wattage"]}
    assert d["thingTypeMetadata"]["deprecated"] is False
    # awscli v1 prints timestamps as they came over the wire: epoch seconds, a JSON number
    created = d["thingTypeMetadata"]["creationDate"]
    assert isinstance(created, (int, float)) and created > 1.6e9, d
    listed = drover.aws("list-thing-types", "--thing-type-name", tt).json["thingTypes"]
    assert [t["thingTypeName"] for t in listed] == [tt]

    drover.aws_error("delete-thing-type", "--thing-type-name", tt, code="InvalidRequestException")
    drover.aws("deprecate-thing-type", "--thing-type-name", tt)
    assert drover.aws("describe-thing-type", "--thing-type-name", tt).json["thingTypeMetadata"]["deprecated"] is True
    drover.aws_error("create-thing", "--thing-name", drover.name("t"), "--thing-type-name", tt,
                     code="InvalidRequestException")
    drover.aws("deprecate-thing-type", "--thing-type-name", tt, "--undo-deprecate")
    assert drover.aws("describe-thing-type", "--thing-type-name", tt).json["thingTypeMetadata"]["deprecated"] is False
    thing = drover.name("t")
    drover.aws("create-thing", "--thing-name", thing, "--thing-type-name", tt)
    assert [t["thingName"] for t in drover.aws("list-things", "--thing-type-name", tt).json["things"]] == [thing]
    drover.aws("update-thing", "--thing-name", thing, "--remove-thing-type")
    assert "thingTypeName" not in drover.aws("describe-thing", "--thing-name", thing).json
    drover.aws("deprecate-thing-type", "--thing-type-name", tt)
    drover.aws("delete-thing-type", "--thing-type-name", tt)
    drover.aws_error("describe-thing-type", "--thing-type-name", tt, code="ResourceNotFoundException")


# --- thing groups -----------------------------------------------------------------------------


def test_cli_thing_groups(drover):
    root, child = drover.name("cliroot"), drover.name("clichild")
    t1, t2 = drover.name("t"), drover.name("t")
    drover.aws("create-thing-group", "--thing-group-name", root, "--thing-group-properties",
               '{"thingGroupDescription":"fleet","attributePayload":{"attributes":{"site":"lab"}}}')
    out = drover.aws("create-thing-group", "--thing-group-name", child, "--parent-group-name", root).json
    assert out["thingGroupArn"] == drover.arn("thinggroup", child)
    d = drover.aws("describe-thing-group", "--thing-group-name", child).json
    assert d["version"] == 1
    assert d["thingGroupMetadata"]["parentGroupName"] == root
    assert d["thingGroupMetadata"]["rootToParentThingGroups"] == [
        {"groupName": root, "groupArn": drover.arn("thinggroup", root)}
    ]
    d = drover.aws("describe-thing-group", "--thing-group-name", root).json
    assert d["thingGroupProperties"]["attributePayload"]["attributes"] == {"site": "lab"}

    out = drover.aws("update-thing-group", "--thing-group-name", root, "--thing-group-properties",
                     '{"thingGroupDescription":"fleet v2"}', "--expected-version", "1").json
    assert out["version"] == 2
    drover.aws_error("update-thing-group", "--thing-group-name", root, "--thing-group-properties",
                     '{"thingGroupDescription":"stale"}', "--expected-version", "1", code="VersionConflictException")
    assert drover.aws("describe-thing-group", "--thing-group-name", root).json["thingGroupProperties"][
        "thingGroupDescription"] == "fleet v2"

    groups = drover.aws("list-thing-groups", "--parent-group", root).json["thingGroups"]
    assert groups == [{"groupName": child, "groupArn": drover.arn("thinggroup", child)}]

    for t in (t1, t2):
        drover.aws("create-thing", "--thing-name", t)
    drover.aws("add-thing-to-thing-group", "--thing-group-name", root, "--thing-name", t1)
    drover.aws("add-thing-to-thing-group", "--thing-group-arn", drover.arn("thinggroup", child),
               "--thing-arn", drover.arn("thing", t2))
    assert drover.aws("list-things-in-thing-group", "--thing-group-name", root).json["things"] == [t1]
    assert sorted(drover.aws("list-things-in-thing-group", "--thing-group-name", root,
                             "--recursive").json["things"]) == sorted([t1, t2])
    assert drover.aws("list-thing-groups-for-thing", "--thing-name", t2).json["thingGroups"] == [
        {"groupName": child, "groupArn": drover.arn("thinggroup", child)}
    ]
    drover.aws_error("add-thing-to-thing-group", "--thing-group-name", root, "--thing-name", drover.name("ghost"),
                     code="ResourceNotFoundException")
    drover.aws_error("add-thing-to-thing-group", "--thing-group-name", drover.name("ghost"), "--thing-name", t1,
                     code="ResourceNotFoundException")

    other = drover.name("cliother")
    drover.aws("create-thing-group", "--thing-group-name", other)
    drover.aws("update-thing-groups-for-thing", "--thing-name", t1, "--thing-groups-to-add", other,
               "--thing-groups-to-remove", root)
    assert [g["groupName"] for g in drover.aws("list-thing-groups-for-thing", "--thing-name", t1).json["thingGroups"]] == [other]
    drover.aws("remove-thing-from-thing-group", "--thing-group-name", other, "--thing-name", t1)
    assert drover.aws("list-thing-groups-for-thing", "--thing-name", t1).json["thingGroups"] == []

    drover.aws_error("delete-thing-group", "--thing-group-name", root, code="InvalidRequestException")
    assert drover.aws("describe-thing-group", "--thing-group-name", root).json["thingGroupName"] == root
    drover.aws("delete-thing-group", "--thing-group-name", child)
    drover.aws("delete-thing-group", "--thing-group-name", root)
    drover.aws("delete-thing-group", "--thing-group-name", root)  # already gone: still succeeds
    drover.aws_error("describe-thing-group", "--thing-group-name", root, code="ResourceNotFoundException")


def test_cli_describe_endpoint(drover):
    out = drover.aws("describe-endpoint", "--endpoint-type", "iot:Data-ATS").json
    assert out["endpointAddress"] == f"127.0.0.1:{drover.server.mqtt_port}"
    out = drover.aws("describe-endpoint", "--endpoint-type", "iot:Jobs").json
    assert out["endpointAddress"] == f"127.0.0.1:{drover.server.http_port}"
    drover.aws_error("describe-endpoint", "--endpoint-type", "iot:Bogus", code="InvalidRequestException")


def test_cli_localhost_endpoint_verifies(drover):
    name = drover.name("clilocal")
    out = drover.aws("create-thing", "--thing-name", name,
                     endpoint=f"https://localhost:{drover.server.http_port}").json
    assert out["thingName"] == name


def test_cli_wrong_secret_is_rejected(drover, tmp_path):
    creds = tmp_path / "credentials"
    creds.write_text(f"[default]\naws_access_key_id = {drover.access_key}\naws_secret_access_key = {'Z' * 40}\n")
    env = drover.cli_env()
    env["AWS_SHARED_CREDENTIALS_FILE"] = str(creds)
    name = drover.name("clibad")
    proc = subprocess.run(
        [*_aws_prefix(drover), "create-thing", "--thing-name", name],
        env=env, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == AWSCLI_SERVICE_ERROR_RC, proc.stderr
    assert "(InvalidSignatureException)" in proc.stderr
    drover.aws_error("describe-thing", "--thing-name", name, code="ResourceNotFoundException")


def _aws_prefix(drover):
    from conftest import aws_executable

    return [aws_executable(), "--endpoint-url", drover.endpoint, "--output", "json", "iot"]


# --- the README walkthrough -------------------------------------------------------------------

WALKTHROUGH = """\
export AWS_SHARED_CREDENTIALS_FILE=drover-data/credentials AWS_CONFIG_FILE=drover-data/config AWS_CA_BUNDLE=drover-data/root-ca.pem
aws --endpoint-url https://localhost:8443 iot create-thing --thing-name dev1 --attribute-payload '{"attributes":{"app_version":"1.0","site":"lab"}}'
aws --endpoint-url https://localhost:8443 iot describe-thing --thing-name dev1
aws --endpoint-url https://localhost:8443 iot update-thing --thing-name dev1 --attribute-payload '{"attributes":{"app_version":"2.0"},"merge":true}'
aws --endpoint-url https://localhost:8443 iot describe-thing --thing-name dev1 --query attributes
aws --endpoint-url https://localhost:8443 iot create-thing-group --thing-group-name lab-devices
aws --endpoint-url https://localhost:8443 iot add-thing-to-thing-group --thing-group-name lab-devices --thing-name dev1
aws --endpoint-url https://localhost:8443 iot list-things-in-thing-group --thing-group-name lab-devices
for i in 2 3 4; do aws --endpoint-url https://localhost:8443 iot create-thing --thing-name dev$i; done
aws --endpoint-url https://localhost:8443 iot list-things --page-size 2 --query 'things[].thingName'
aws --endpoint-url https://localhost:8443 iot list-things --page-size 2 --max-items 2 --query NextToken | tr -d '"' > next-token.txt
aws --endpoint-url https://localhost:8443 iot list-things --page-size 2 --starting-token "$(cat next-token.txt)" --query 'things[].thingName'
"""


def _json_stream(text):
    dec, pos, out = json.JSONDecoder(), 0, []
    text = text.strip()
    while pos < len(text):
        obj, end = dec.raw_decode(text, pos)
        out.append(obj)
        pos = end
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return out


def test_walkthrough_step_by_step(tmp_path):
    """Runs each line of WALKTHROUGH with bash in a directory whose drover-data is a fresh
    server's data directory (only the port differs from the printed 8443), and checks what each
    step prints."""
    d = start_drover(tmp_path, data_name="drover-data")
    try:
        lines = WALKTHROUGH.replace("https://localhost:8443", f"https://localhost:{d.server.http_port}").splitlines()
        export, steps = lines[0], lines[1:]
        assert export.startswith("export ")
        env = {k: v for k, v in d.cli_env().items() if not k.startswith("AWS_")}
        env["AWS_PAGER"] = ""
        outputs = []
        for step in steps:
            proc = subprocess.run(["bash", "-euo", "pipefail", "-c", f"{export}\n{step}"], cwd=tmp_path, env=env,
                                  capture_output=True, text=True, timeout=120)
            assert proc.returncode == 0, f"step failed: {step}\n{proc.stdout}\n{proc.stderr}"
            outputs.append(proc.stdout)
        (create, describe, update, attrs, mkgroup, add, members, more, page_all, save_token, page2) = outputs

        created = json.loads(create)
        assert created["thingName"] == "dev1" and created["thingArn"] == d.arn("thing", "dev1")
        described = json.loads(describe)
        assert described["attributes"] == {"app_version": "1.0", "site": "lab"} and described["version"] == 1
        assert update.strip() in ("", "{}")
        assert json.loads(attrs) == {"app_version": "2.0", "site": "lab"}
        assert json.loads(mkgroup)["thingGroupArn"] == d.arn("thinggroup", "lab-devices")
        assert add.strip() in ("", "{}")
        assert json.loads(members) == {"things": ["dev1"]}
        assert [o["thingName"] for o in _json_stream(more)] == ["dev2", "dev3", "dev4"]
        assert json.loads(page_all) == ["dev1", "dev2", "dev3", "dev4"]
        assert save_token == ""
        token = (tmp_path / "next-token.txt").read_text().strip()
        assert token and token != "None"
        assert json.loads(page2) == ["dev3", "dev4"]

        iot = d.client_from_files(endpoint=f"https://localhost:{d.server.http_port}")
        assert iot.describe_thing(thingName="dev1")["version"] == 2
        assert iot.list_thing_groups_for_thing(thingName="dev1")["thingGroups"][0]["groupName"] == "lab-devices"
    finally:
        stop_drover(d)


def test_readme_prints_this_walkthrough():
    """The README's walkthrough block is exactly WALKTHROUGH (test_readme.py runs that block as
    one script; the test above checks each step)."""
    readme = (REPO / "README.md").read_text()
    block = re.search(r"<!-- walkthrough:start -->\s*```sh\n(.*?)```\s*<!-- walkthrough:end -->", readme, re.S)
    assert block, "README.md has no walkthrough block"
    assert block.group(1) == WALKTHROUGH
