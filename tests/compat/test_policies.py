"""AWS IoT policies with boto3 and awscli: CreatePolicy, GetPolicy, ListPolicies, DeletePolicy,
the policy versions (Create/Get/List/SetDefault/Delete), AttachPolicy / DetachPolicy on
certificates and thing groups, ListAttachedPolicies, ListTargetsForPolicy, and the legacy
principal-policy operations. Every refusal is checked for its exact error and for changing
nothing."""

import datetime
import json

import pytest

from conftest import error_code


def doc(action="iot:Connect", resource="*"):
    return json.dumps({"Version": "2012-10-17",
                       "Statement": [{"Effect": "Allow", "Action": action, "Resource": resource}]})


def all_policies(iot, **kw):
    out, marker = [], None
    while True:
        page = iot.list_policies(**kw, **({"marker": marker} if marker else {}))
        out += page["policies"]
        marker = page.get("nextMarker")
        if not marker:
            return out


def test_create_get_list_and_delete_policy(drover, iot):
    name = drover.name("pol")
    text = doc("iot:Publish", "arn:aws:iot:*:*:topic/${iot:ClientId}/*")
    out = iot.create_policy(policyName=name, policyDocument=text)
    assert out["policyName"] == name
    assert out["policyArn"] == drover.arn("policy", name)
    assert out["policyDocument"] == text
    assert out["policyVersionId"] == "1"
    got = iot.get_policy(policyName=name)
    assert got["policyName"] == name and got["policyArn"] == out["policyArn"]
    assert got["policyDocument"] == text, "the document comes back verbatim"
    assert got["defaultVersionId"] == "1"
    assert got["generationId"]
    now = datetime.datetime.now(datetime.timezone.utc)
    assert abs((now - got["creationDate"]).total_seconds()) < 300
    assert got["lastModifiedDate"] >= got["creationDate"]
    assert {"policyName": name, "policyArn": out["policyArn"]} in all_policies(iot)
    iot.delete_policy(policyName=name)
    with pytest.raises(iot.exceptions.ResourceNotFoundException) as ei:
        iot.get_policy(policyName=name)
    assert error_code(ei)[0] == 404
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.delete_policy(policyName=name)


def test_list_policies_pages_in_name_order(drover, iot):
    names = [drover.name("page-pol") for _ in range(3)]
    for n in names:
        iot.create_policy(policyName=n, policyDocument=doc())
    listed = [p["policyName"] for p in all_policies(iot, pageSize=2)]
    assert listed == sorted(listed)
    assert [n for n in listed if n in names] == sorted(names)
    descending = [p["policyName"] for p in all_policies(iot, pageSize=2, ascendingOrder=False)]
    assert descending == sorted(listed, reverse=True)


def test_awscli_policy_round_trip(drover, iot, tmp_path):
    name = drover.name("cli-pol")
    f = tmp_path / "policy.json"
    f.write_text(doc("iot:Subscribe"))
    out = drover.aws("create-policy", "--policy-name", name, "--policy-document", f"file://{f}").json
    assert out["policyVersionId"] == "1"
    assert json.loads(drover.aws("get-policy", "--policy-name", name).json["policyDocument"]) == json.loads(doc("iot:Subscribe"))
    drover.aws_error("create-policy", "--policy-name", name, "--policy-document", f"file://{f}",
                     code="ResourceAlreadyExistsException")


def test_malformed_documents_are_refused_and_nothing_is_created(drover, iot):
    name = drover.name("bad-pol")
    bad = [
        "not json",
        json.dumps({"Version": "2012-10-17"}),
        json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Maybe", "Action": "iot:*", "Resource": "*"}]}),
        json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iot:*",
                                                            "Resource": ["arn:aws:iot:*:*:topic/" + "x" * 60] * 40}]}),
    ]
    for text in bad:
        with pytest.raises(iot.exceptions.MalformedPolicyException) as ei:
            iot.create_policy(policyName=name, policyDocument=text)
        assert error_code(ei)[0] == 400
        with pytest.raises(iot.exceptions.ResourceNotFoundException):
            iot.get_policy(policyName=name)
    drover.aws_error("create-policy", "--policy-name", name, "--policy-document", "{}", code="MalformedPolicyException")


def test_invalid_and_duplicate_names(drover, iot):
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.create_policy(policyName="has space", policyDocument=doc())
    name = drover.name("dup-pol")
    iot.create_policy(policyName=name, policyDocument=doc("iot:Connect"))
    with pytest.raises(iot.exceptions.ResourceAlreadyExistsException) as ei:
        iot.create_policy(policyName=name, policyDocument=doc("iot:Publish"))
    assert error_code(ei)[0] == 409
    assert iot.get_policy(policyName=name)["policyDocument"] == doc("iot:Connect")


def test_policy_versions(drover, iot):
    name = drover.name("versioned")
    iot.create_policy(policyName=name, policyDocument=doc("iot:Connect"))
    v2 = iot.create_policy_version(policyName=name, policyDocument=doc("iot:Publish"))
    assert v2["policyVersionId"] == "2" and v2["isDefaultVersion"] is False
    assert v2["policyArn"] == drover.arn("policy", name)
    assert iot.get_policy(policyName=name)["defaultVersionId"] == "1"
    v3 = iot.create_policy_version(policyName=name, policyDocument=doc("iot:Subscribe"), setAsDefault=True)
    assert v3["isDefaultVersion"] is True
    got = iot.get_policy(policyName=name)
    assert got["defaultVersionId"] == "3" and got["policyDocument"] == doc("iot:Subscribe")
    pv = iot.get_policy_version(policyName=name, policyVersionId="2")
    assert pv["policyDocument"] == doc("iot:Publish") and pv["isDefaultVersion"] is False
    assert pv["policyName"] == name and isinstance(pv["creationDate"], datetime.datetime)
    versions = iot.list_policy_versions(policyName=name)["policyVersions"]
    assert [(v["versionId"], v["isDefaultVersion"]) for v in versions] == [("3", True), ("2", False), ("1", False)]
    assert all(isinstance(v["createDate"], datetime.datetime) for v in versions)

    iot.set_default_policy_version(policyName=name, policyVersionId="2")
    assert iot.get_policy(policyName=name)["policyDocument"] == doc("iot:Publish")
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.set_default_policy_version(policyName=name, policyVersionId="9")
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.get_policy_version(policyName=name, policyVersionId="9")
    with pytest.raises(iot.exceptions.MalformedPolicyException):
        iot.create_policy_version(policyName=name, policyDocument="{")
    assert len(iot.list_policy_versions(policyName=name)["policyVersions"]) == 3
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.create_policy_version(policyName=drover.name("ghost"), policyDocument=doc())


def test_sixth_version_is_refused(drover, iot):
    name = drover.name("five")
    iot.create_policy(policyName=name, policyDocument=doc())
    for _ in range(4):
        iot.create_policy_version(policyName=name, policyDocument=doc("iot:Publish"))
    with pytest.raises(iot.exceptions.VersionsLimitExceededException) as ei:
        iot.create_policy_version(policyName=name, policyDocument=doc("iot:Receive"), setAsDefault=True)
    assert error_code(ei)[0] == 409
    versions = iot.list_policy_versions(policyName=name)["policyVersions"]
    assert len(versions) == 5
    assert iot.get_policy(policyName=name)["defaultVersionId"] == "1"
    # After deleting one, a new version gets the next number (numbers are never reused).
    iot.delete_policy_version(policyName=name, policyVersionId="2")
    assert iot.create_policy_version(policyName=name, policyDocument=doc())["policyVersionId"] == "6"


def test_default_version_and_versioned_policies_cannot_be_deleted(drover, iot):
    name = drover.name("keep")
    iot.create_policy(policyName=name, policyDocument=doc())
    iot.create_policy_version(policyName=name, policyDocument=doc("iot:Publish"))
    with pytest.raises(iot.exceptions.DeleteConflictException) as ei:
        iot.delete_policy_version(policyName=name, policyVersionId="1")
    assert error_code(ei)[0] == 409
    with pytest.raises(iot.exceptions.DeleteConflictException):
        iot.delete_policy(policyName=name)
    assert len(iot.list_policy_versions(policyName=name)["policyVersions"]) == 2
    iot.delete_policy_version(policyName=name, policyVersionId="2")
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.delete_policy_version(policyName=name, policyVersionId="2")
    iot.delete_policy(policyName=name)


def test_attach_detach_and_list_targets(drover, iot):
    name = drover.name("attached")
    iot.create_policy(policyName=name, policyDocument=doc())
    cert = iot.create_keys_and_certificate(setAsActive=True)["certificateArn"]
    iot.attach_policy(policyName=name, target=cert)
    iot.attach_policy(policyName=name, target=cert)  # idempotent
    attached = iot.list_attached_policies(target=cert)
    assert attached["policies"] == [{"policyName": name, "policyArn": drover.arn("policy", name)}]
    assert iot.list_targets_for_policy(policyName=name)["targets"] == [cert]
    assert [p["policyName"] for p in drover.aws("list-attached-policies", "--target", cert).json["policies"]] == [name]

    with pytest.raises(iot.exceptions.DeleteConflictException) as ei:
        iot.delete_policy(policyName=name)
    assert error_code(ei)[0] == 409
    assert iot.get_policy(policyName=name)["policyName"] == name

    iot.detach_policy(policyName=name, target=cert)
    iot.detach_policy(policyName=name, target=cert)  # detaching what is not attached succeeds
    assert iot.list_attached_policies(target=cert)["policies"] == []
    assert iot.list_targets_for_policy(policyName=name)["targets"] == []
    iot.delete_policy(policyName=name)


def test_attach_refusals_change_nothing(drover, iot):
    name = drover.name("refused")
    iot.create_policy(policyName=name, policyDocument=doc())
    cert = iot.create_keys_and_certificate()["certificateArn"]
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.attach_policy(policyName=drover.name("ghost"), target=cert)
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.attach_policy(policyName=name, target=drover.arn("cert", "cd" * 32))
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.attach_policy(policyName=name, target=drover.arn("thinggroup", drover.name("ghost")))
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.attach_policy(policyName=name, target="not-an-arn")
    assert iot.list_targets_for_policy(policyName=name)["targets"] == []
    assert iot.list_attached_policies(target=cert)["policies"] == []
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.list_targets_for_policy(policyName=drover.name("ghost"))


def test_a_target_holds_at_most_ten_policies(drover, iot):
    cert = iot.create_keys_and_certificate()["certificateArn"]
    names = [drover.name("ten") for _ in range(11)]
    for n in names:
        iot.create_policy(policyName=n, policyDocument=doc())
    for n in names[:10]:
        iot.attach_policy(policyName=n, target=cert)
    with pytest.raises(iot.exceptions.LimitExceededException) as ei:
        iot.attach_policy(policyName=names[10], target=cert)
    assert error_code(ei)[0] == 410
    attached = iot.list_attached_policies(target=cert, pageSize=4)
    assert len(attached["policies"]) == 4 and attached["nextMarker"]
    everything, marker = [], None
    while True:
        page = iot.list_attached_policies(target=cert, pageSize=4, **({"marker": marker} if marker else {}))
        everything += [p["policyName"] for p in page["policies"]]
        marker = page.get("nextMarker")
        if not marker:
            break
    assert everything == sorted(names[:10])
    assert iot.list_targets_for_policy(policyName=names[10])["targets"] == []


def test_thing_group_targets_and_recursive_listing(drover, iot):
    parent, child = drover.name("pg"), drover.name("pg")
    iot.create_thing_group(thingGroupName=parent)
    iot.create_thing_group(thingGroupName=child, parentGroupName=parent)
    up, down = drover.name("grp-pol"), drover.name("grp-pol")
    for n in (up, down):
        iot.create_policy(policyName=n, policyDocument=doc())
    parent_arn, child_arn = drover.arn("thinggroup", parent), drover.arn("thinggroup", child)
    iot.attach_policy(policyName=up, target=parent_arn)
    iot.attach_policy(policyName=down, target=child_arn)
    assert [p["policyName"] for p in iot.list_attached_policies(target=child_arn)["policies"]] == [down]
    recursive = iot.list_attached_policies(target=child_arn, recursive=True)["policies"]
    assert sorted(p["policyName"] for p in recursive) == sorted([up, down])
    assert iot.list_targets_for_policy(policyName=up)["targets"] == [parent_arn]
    # Deleting the group takes its attachments along.
    iot.delete_thing_group(thingGroupName=child)
    assert iot.list_targets_for_policy(policyName=down)["targets"] == []
    iot.delete_policy(policyName=down)


def test_legacy_principal_policy_operations(drover, iot):
    name = drover.name("legacy")
    iot.create_policy(policyName=name, policyDocument=doc())
    cert = iot.create_keys_and_certificate()["certificateArn"]
    iot.attach_principal_policy(policyName=name, principal=cert)
    assert [p["policyName"] for p in iot.list_principal_policies(principal=cert)["policies"]] == [name]
    assert iot.list_policy_principals(policyName=name)["principals"] == [cert]
    iot.detach_principal_policy(policyName=name, principal=cert)
    assert iot.list_principal_policies(principal=cert)["policies"] == []
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.detach_principal_policy(policyName=name, principal=cert)
