"""Thing groups with boto3: hierarchy, metadata, versions, listing, membership."""

import datetime

import pytest

from conftest import error_code


def _group_names(iot, **kw):
    out, token = [], None
    while True:
        page = iot.list_thing_groups(**kw, **({"nextToken": token} if token else {}))
        out += [g["groupName"] for g in page["thingGroups"]]
        token = page.get("nextToken")
        if not token:
            return out


def _members(iot, group, **kw):
    out, token = [], None
    while True:
        page = iot.list_things_in_thing_group(thingGroupName=group, **kw, **({"nextToken": token} if token else {}))
        out += page["things"]
        token = page.get("nextToken")
        if not token:
            return out


def _groups_of(iot, thing):
    return {g["groupName"] for g in iot.list_thing_groups_for_thing(thingName=thing)["thingGroups"]}


# --- CreateThingGroup / DescribeThingGroup ----------------------------------------------------


def test_create_and_describe_root_group(drover, iot):
    g = drover.name("root")
    props = {"thingGroupDescription": "All lab devices", "attributePayload": {"attributes": {"site": "lab", "floor": "2"}}}
    out = iot.create_thing_group(thingGroupName=g, thingGroupProperties=props)
    assert out["thingGroupName"] == g
    assert out["thingGroupArn"] == drover.arn("thinggroup", g)
    assert out["thingGroupId"]
    d = iot.describe_thing_group(thingGroupName=g)
    assert d["thingGroupName"] == g
    assert d["thingGroupArn"] == drover.arn("thinggroup", g)
    assert d["thingGroupId"] == out["thingGroupId"]
    assert d["version"] == 1
    assert d["thingGroupProperties"]["thingGroupDescription"] == "All lab devices"
    assert d["thingGroupProperties"]["attributePayload"]["attributes"] == {"site": "lab", "floor": "2"}
    meta = d["thingGroupMetadata"]
    assert "parentGroupName" not in meta
    assert meta.get("rootToParentThingGroups", []) == []
    assert isinstance(meta["creationDate"], datetime.datetime)
    assert abs((datetime.datetime.now(datetime.timezone.utc) - meta["creationDate"]).total_seconds()) < 300
    # static groups carry no dynamic-group fields
    for k in ("queryString", "indexName", "status"):
        assert k not in d


def test_hierarchy_metadata_is_root_first(drover, iot):
    a, b, c = drover.name("a"), drover.name("b"), drover.name("c")
    iot.create_thing_group(thingGroupName=a)
    iot.create_thing_group(thingGroupName=b, parentGroupName=a)
    iot.create_thing_group(thingGroupName=c, parentGroupName=b)
    meta = iot.describe_thing_group(thingGroupName=c)["thingGroupMetadata"]
    assert meta["parentGroupName"] == b
    assert meta["rootToParentThingGroups"] == [
        {"groupName": a, "groupArn": drover.arn("thinggroup", a)},
        {"groupName": b, "groupArn": drover.arn("thinggroup", b)},
    ]
    meta_b = iot.describe_thing_group(thingGroupName=b)["thingGroupMetadata"]
    assert meta_b["parentGroupName"] == a
    assert meta_b["rootToParentThingGroups"] == [{"groupName": a, "groupArn": drover.arn("thinggroup", a)}]


def test_create_group_with_missing_parent(drover, iot):
    g = drover.name("orphan")
    with pytest.raises((iot.exceptions.ResourceNotFoundException, iot.exceptions.InvalidRequestException)):
        iot.create_thing_group(thingGroupName=g, parentGroupName=drover.name("no-parent"))
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_thing_group(thingGroupName=g)


def test_identical_group_create_is_idempotent_and_different_conflicts(drover, iot):
    g = drover.name("idem")
    props = {"thingGroupDescription": "x", "attributePayload": {"attributes": {"a": "1"}}}
    first = iot.create_thing_group(thingGroupName=g, thingGroupProperties=props)
    second = iot.create_thing_group(thingGroupName=g, thingGroupProperties=props)
    assert second["thingGroupId"] == first["thingGroupId"]
    assert second["thingGroupArn"] == first["thingGroupArn"]
    with pytest.raises(iot.exceptions.ResourceAlreadyExistsException) as ei:
        iot.create_thing_group(thingGroupName=g, thingGroupProperties={"thingGroupDescription": "y"})
    assert error_code(ei)[0] == 409
    d = iot.describe_thing_group(thingGroupName=g)
    assert d["thingGroupProperties"]["thingGroupDescription"] == "x"
    assert d["version"] == 1


def test_same_name_under_another_parent_conflicts(drover, iot):
    p1, p2, g = drover.name("p"), drover.name("p"), drover.name("g")
    iot.create_thing_group(thingGroupName=p1)
    iot.create_thing_group(thingGroupName=p2)
    iot.create_thing_group(thingGroupName=g, parentGroupName=p1)
    with pytest.raises(iot.exceptions.ResourceAlreadyExistsException):
        iot.create_thing_group(thingGroupName=g, parentGroupName=p2)
    assert iot.describe_thing_group(thingGroupName=g)["thingGroupMetadata"]["parentGroupName"] == p1


@pytest.mark.parametrize("bad", ["bad!group", "x" * 129, "with space"], ids=["bang", "129chars", "space"])
def test_invalid_group_name(drover, iot, bad):
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.create_thing_group(thingGroupName=bad)
    assert bad not in _group_names(iot)


def test_invalid_group_attributes_are_rejected(drover, iot):
    g = drover.name("badattrs")
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.create_thing_group(thingGroupName=g, thingGroupProperties={"attributePayload": {"attributes": {"k": "a b"}}})
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_thing_group(thingGroupName=g)


def test_hierarchy_depth_is_limited_to_seven(drover, iot):
    chain = [drover.name("lvl") for _ in range(8)]
    iot.create_thing_group(thingGroupName=chain[0])
    for parent, child in zip(chain[:6], chain[1:7]):
        iot.create_thing_group(thingGroupName=child, parentGroupName=parent)
    assert len(iot.describe_thing_group(thingGroupName=chain[6])["thingGroupMetadata"]["rootToParentThingGroups"]) == 6
    with pytest.raises((iot.exceptions.InvalidRequestException, iot.exceptions.LimitExceededException)):
        iot.create_thing_group(thingGroupName=chain[7], parentGroupName=chain[6])
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_thing_group(thingGroupName=chain[7])


def test_describe_missing_group(drover, iot):
    with pytest.raises(iot.exceptions.ResourceNotFoundException) as ei:
        iot.describe_thing_group(thingGroupName=drover.name("ghost-group"))
    assert error_code(ei)[:2] == (404, "ResourceNotFoundException")


# --- UpdateThingGroup -------------------------------------------------------------------------


def test_update_group_versions_and_attributes(drover, iot):
    g = drover.name("upd")
    iot.create_thing_group(
        thingGroupName=g,
        thingGroupProperties={"thingGroupDescription": "v1", "attributePayload": {"attributes": {"a": "1", "b": "2"}}},
    )
    out = iot.update_thing_group(
        thingGroupName=g,
        thingGroupProperties={"thingGroupDescription": "v2", "attributePayload": {"attributes": {"b": "", "c": "3"}, "merge": True}},
    )
    assert out["version"] == 2
    d = iot.describe_thing_group(thingGroupName=g)
    assert d["version"] == 2
    assert d["thingGroupProperties"]["thingGroupDescription"] == "v2"
    assert d["thingGroupProperties"]["attributePayload"]["attributes"] == {"a": "1", "c": "3"}
    out = iot.update_thing_group(
        thingGroupName=g, thingGroupProperties={"attributePayload": {"attributes": {"z": "9"}}}, expectedVersion=2
    )
    assert out["version"] == 3
    d = iot.describe_thing_group(thingGroupName=g)
    assert d["thingGroupProperties"]["attributePayload"]["attributes"] == {"z": "9"}
    assert d["version"] == 3


def test_update_group_stale_version_conflicts(drover, iot):
    g = drover.name("updcas")
    iot.create_thing_group(thingGroupName=g, thingGroupProperties={"thingGroupDescription": "orig"})
    with pytest.raises(iot.exceptions.VersionConflictException) as ei:
        iot.update_thing_group(thingGroupName=g, thingGroupProperties={"thingGroupDescription": "new"}, expectedVersion=5)
    assert error_code(ei)[0] == 409
    d = iot.describe_thing_group(thingGroupName=g)
    assert d["thingGroupProperties"]["thingGroupDescription"] == "orig"
    assert d["version"] == 1


def test_update_missing_group(drover, iot):
    g = drover.name("ghost-group")
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.update_thing_group(thingGroupName=g, thingGroupProperties={"thingGroupDescription": "x"})
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_thing_group(thingGroupName=g)


def test_update_group_with_bad_attribute_changes_nothing(drover, iot):
    g = drover.name("updbad")
    iot.create_thing_group(thingGroupName=g, thingGroupProperties={"attributePayload": {"attributes": {"a": "1"}}})
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.update_thing_group(thingGroupName=g, thingGroupProperties={"attributePayload": {"attributes": {"a": "x y"}}})
    d = iot.describe_thing_group(thingGroupName=g)
    assert d["thingGroupProperties"]["attributePayload"]["attributes"] == {"a": "1"}
    assert d["version"] == 1


# --- DeleteThingGroup -------------------------------------------------------------------------


def test_delete_group(drover, iot):
    g, t = drover.name("delg"), drover.name("t")
    iot.create_thing_group(thingGroupName=g)
    iot.create_thing(thingName=t)
    iot.add_thing_to_thing_group(thingGroupName=g, thingName=t)
    iot.delete_thing_group(thingGroupName=g)
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_thing_group(thingGroupName=g)
    assert g not in _group_names(iot)
    assert _groups_of(iot, t) == set()
    assert iot.describe_thing(thingName=t)["thingName"] == t


def test_delete_missing_group_succeeds(drover, iot):
    resp = iot.delete_thing_group(thingGroupName=drover.name("never-existed"))
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_delete_group_with_children_is_rejected(drover, iot):
    p, c = drover.name("parent"), drover.name("child")
    iot.create_thing_group(thingGroupName=p)
    iot.create_thing_group(thingGroupName=c, parentGroupName=p)
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.delete_thing_group(thingGroupName=p)
    assert iot.describe_thing_group(thingGroupName=p)["thingGroupName"] == p
    assert iot.describe_thing_group(thingGroupName=c)["thingGroupMetadata"]["parentGroupName"] == p
    iot.delete_thing_group(thingGroupName=c)
    iot.delete_thing_group(thingGroupName=p)
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_thing_group(thingGroupName=p)


def test_delete_group_stale_version_conflicts(drover, iot):
    g = drover.name("delcas")
    iot.create_thing_group(thingGroupName=g)
    iot.update_thing_group(thingGroupName=g, thingGroupProperties={"thingGroupDescription": "x"})
    with pytest.raises(iot.exceptions.VersionConflictException):
        iot.delete_thing_group(thingGroupName=g, expectedVersion=1)
    assert iot.describe_thing_group(thingGroupName=g)["version"] == 2
    iot.delete_thing_group(thingGroupName=g, expectedVersion=2)
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_thing_group(thingGroupName=g)


# --- ListThingGroups --------------------------------------------------------------------------


def test_list_thing_groups_hierarchy_filters(drover, iot):
    pre = drover.name("tree")
    root, c1, c2, gc = f"{pre}-root", f"{pre}-c1", f"{pre}-c2", f"{pre}-gc"
    other_root = f"{pre}-other"
    iot.create_thing_group(thingGroupName=root)
    iot.create_thing_group(thingGroupName=c1, parentGroupName=root)
    iot.create_thing_group(thingGroupName=c2, parentGroupName=root)
    iot.create_thing_group(thingGroupName=gc, parentGroupName=c1)
    iot.create_thing_group(thingGroupName=other_root)

    assert set(_group_names(iot, namePrefixFilter=pre)) == {root, c1, c2, gc, other_root}
    assert set(_group_names(iot, namePrefixFilter=f"{pre}-c")) == {c1, c2}
    assert set(_group_names(iot, parentGroup=root, recursive=True)) == {c1, c2, gc}
    # recursive=false: direct children only
    assert set(_group_names(iot, parentGroup=root, recursive=False)) == {c1, c2}
    assert set(_group_names(iot, parentGroup=c1, recursive=False)) == {gc}
    assert _group_names(iot, parentGroup=gc) == []
    # no parent + recursive=false: top-level groups only
    assert set(_group_names(iot, namePrefixFilter=pre, recursive=False)) == {root, other_root}
    # both filters
    assert set(_group_names(iot, parentGroup=root, namePrefixFilter=f"{pre}-g", recursive=True)) == {gc}
    assert _group_names(iot, parentGroup=root, namePrefixFilter=f"{pre}-g", recursive=False) == []
    entries = iot.list_thing_groups(namePrefixFilter=c1)["thingGroups"]
    assert entries == [{"groupName": c1, "groupArn": drover.arn("thinggroup", c1)}]


def test_list_thing_groups_recursive_default(drover, iot):
    # AWS's guide: "--recursive ... list all child groups, not just direct child groups". So with
    # parentGroup and no recursive only direct children come back; without parentGroup every
    # group is listed.
    pre = drover.name("deftree")
    root, child, grandchild = f"{pre}-root", f"{pre}-child", f"{pre}-grandchild"
    iot.create_thing_group(thingGroupName=root)
    iot.create_thing_group(thingGroupName=child, parentGroupName=root)
    iot.create_thing_group(thingGroupName=grandchild, parentGroupName=child)
    assert set(_group_names(iot, namePrefixFilter=pre)) == {root, child, grandchild}
    assert set(_group_names(iot, parentGroup=root)) == {child}
    assert set(_group_names(iot, parentGroup=root, recursive=True)) == {child, grandchild}


def test_list_thing_groups_missing_parent(drover, iot):
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.list_thing_groups(parentGroup=drover.name("no-such-parent"))


def test_list_thing_groups_pagination(drover, iot):
    pre = drover.name("pgrp")
    made = {f"{pre}-{i}" for i in range(5)}
    for g in made:
        iot.create_thing_group(thingGroupName=g)
    pages, token = [], None
    while True:
        page = iot.list_thing_groups(namePrefixFilter=pre, maxResults=2, **({"nextToken": token} if token else {}))
        pages.append([g["groupName"] for g in page["thingGroups"]])
        token = page.get("nextToken")
        if not token:
            break
        assert len(pages) < 10
    assert [len(p) for p in pages] == [2, 2, 1]
    flat = [n for p in pages for n in p]
    assert set(flat) == made and len(flat) == 5


# --- membership -------------------------------------------------------------------------------


def test_add_and_remove_by_name(drover, iot):
    g, t = drover.name("mg"), drover.name("t")
    iot.create_thing_group(thingGroupName=g)
    iot.create_thing(thingName=t)
    iot.add_thing_to_thing_group(thingGroupName=g, thingName=t)
    assert iot.list_things_in_thing_group(thingGroupName=g)["things"] == [t]
    assert iot.list_thing_groups_for_thing(thingName=t)["thingGroups"] == [
        {"groupName": g, "groupArn": drover.arn("thinggroup", g)}
    ]
    # adding again is a no-op
    iot.add_thing_to_thing_group(thingGroupName=g, thingName=t)
    assert iot.list_things_in_thing_group(thingGroupName=g)["things"] == [t]
    iot.remove_thing_from_thing_group(thingGroupName=g, thingName=t)
    assert iot.list_things_in_thing_group(thingGroupName=g)["things"] == []
    assert iot.list_thing_groups_for_thing(thingName=t)["thingGroups"] == []


def test_membership_does_not_change_thing_version(drover, iot):
    g, t = drover.name("mg"), drover.name("t")
    iot.create_thing_group(thingGroupName=g)
    iot.create_thing(thingName=t)
    iot.add_thing_to_thing_group(thingGroupName=g, thingName=t)
    assert iot.describe_thing(thingName=t)["version"] == 1
    assert iot.describe_thing_group(thingGroupName=g)["version"] == 1


def test_add_and_remove_by_arn(drover, iot):
    g, t = drover.name("mga"), drover.name("t")
    garn = iot.create_thing_group(thingGroupName=g)["thingGroupArn"]
    tarn = iot.create_thing(thingName=t)["thingArn"]
    iot.add_thing_to_thing_group(thingGroupArn=garn, thingArn=tarn)
    assert iot.list_things_in_thing_group(thingGroupName=g)["things"] == [t]
    iot.remove_thing_from_thing_group(thingGroupArn=garn, thingArn=tarn)
    assert iot.list_things_in_thing_group(thingGroupName=g)["things"] == []
    # mixed: group by name, thing by ARN
    iot.add_thing_to_thing_group(thingGroupName=g, thingArn=tarn)
    assert _groups_of(iot, t) == {g}


def test_add_missing_thing_or_group_is_not_found(drover, iot):
    g, t = drover.name("mgm"), drover.name("t")
    iot.create_thing_group(thingGroupName=g)
    iot.create_thing(thingName=t)
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.add_thing_to_thing_group(thingGroupName=g, thingName=drover.name("ghost"))
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.add_thing_to_thing_group(thingGroupName=drover.name("ghost-group"), thingName=t)
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.add_thing_to_thing_group(thingGroupArn=drover.arn("thinggroup", drover.name("ghost-group")), thingName=t)
    assert iot.list_things_in_thing_group(thingGroupName=g)["things"] == []
    assert _groups_of(iot, t) == set()


def test_add_without_thing_or_group_is_invalid(drover, iot):
    g, t = drover.name("mgi"), drover.name("t")
    iot.create_thing_group(thingGroupName=g)
    iot.create_thing(thingName=t)
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.add_thing_to_thing_group(thingGroupName=g)
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.add_thing_to_thing_group(thingName=t)
    assert iot.list_things_in_thing_group(thingGroupName=g)["things"] == []


def test_remove_missing_thing_or_group_is_not_found(drover, iot):
    g, t = drover.name("mgr"), drover.name("t")
    iot.create_thing_group(thingGroupName=g)
    iot.create_thing(thingName=t)
    iot.add_thing_to_thing_group(thingGroupName=g, thingName=t)
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.remove_thing_from_thing_group(thingGroupName=drover.name("ghost-group"), thingName=t)
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.remove_thing_from_thing_group(thingGroupName=g, thingName=drover.name("ghost"))
    assert iot.list_things_in_thing_group(thingGroupName=g)["things"] == [t]


def test_thing_cannot_join_two_groups_of_one_hierarchy(drover, iot):
    # AWS: "you can't add a thing to two groups which share a common parent"
    root, c1, c2, t = drover.name("h"), drover.name("h"), drover.name("h"), drover.name("t")
    iot.create_thing_group(thingGroupName=root)
    iot.create_thing_group(thingGroupName=c1, parentGroupName=root)
    iot.create_thing_group(thingGroupName=c2, parentGroupName=root)
    iot.create_thing(thingName=t)
    iot.add_thing_to_thing_group(thingGroupName=c1, thingName=t)
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.add_thing_to_thing_group(thingGroupName=c2, thingName=t)
    assert _groups_of(iot, t) == {c1}
    assert iot.list_things_in_thing_group(thingGroupName=c2)["things"] == []


def test_thing_in_at_most_ten_groups(drover, iot):
    t = drover.name("t")
    iot.create_thing(thingName=t)
    groups = [drover.name("ten") for _ in range(11)]
    for g in groups:
        iot.create_thing_group(thingGroupName=g)
    for g in groups[:10]:
        iot.add_thing_to_thing_group(thingGroupName=g, thingName=t)
    with pytest.raises((iot.exceptions.InvalidRequestException, iot.exceptions.LimitExceededException)):
        iot.add_thing_to_thing_group(thingGroupName=groups[10], thingName=t)
    assert _groups_of(iot, t) == set(groups[:10])
    with pytest.raises((iot.exceptions.InvalidRequestException, iot.exceptions.LimitExceededException)):
        iot.update_thing_groups_for_thing(thingName=t, thingGroupsToAdd=[groups[10]])
    assert _groups_of(iot, t) == set(groups[:10])
    # swapping one for another in a single call stays within the limit
    iot.update_thing_groups_for_thing(thingName=t, thingGroupsToAdd=[groups[10]], thingGroupsToRemove=[groups[0]])
    assert _groups_of(iot, t) == set(groups[1:])


def test_update_thing_groups_for_thing(drover, iot):
    t = drover.name("t")
    iot.create_thing(thingName=t)
    g1, g2, g3 = drover.name("u"), drover.name("u"), drover.name("u")
    for g in (g1, g2, g3):
        iot.create_thing_group(thingGroupName=g)
    iot.update_thing_groups_for_thing(thingName=t, thingGroupsToAdd=[g1, g2])
    assert _groups_of(iot, t) == {g1, g2}
    iot.update_thing_groups_for_thing(thingName=t, thingGroupsToAdd=[g3], thingGroupsToRemove=[g1])
    assert _groups_of(iot, t) == {g2, g3}
    assert iot.list_things_in_thing_group(thingGroupName=g1)["things"] == []
    assert iot.list_things_in_thing_group(thingGroupName=g3)["things"] == [t]


def test_update_thing_groups_for_thing_with_missing_group_changes_nothing(drover, iot):
    t = drover.name("t")
    iot.create_thing(thingName=t)
    g1, g2 = drover.name("u"), drover.name("u")
    iot.create_thing_group(thingGroupName=g1)
    iot.create_thing_group(thingGroupName=g2)
    iot.update_thing_groups_for_thing(thingName=t, thingGroupsToAdd=[g1])
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.update_thing_groups_for_thing(thingName=t, thingGroupsToAdd=[g2, drover.name("ghost-group")], thingGroupsToRemove=[g1])
    assert _groups_of(iot, t) == {g1}


def test_update_thing_groups_for_missing_thing(drover, iot):
    g = drover.name("u")
    iot.create_thing_group(thingGroupName=g)
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.update_thing_groups_for_thing(thingName=drover.name("ghost"), thingGroupsToAdd=[g])
    assert iot.list_things_in_thing_group(thingGroupName=g)["things"] == []


def test_list_things_in_group_recursive(drover, iot):
    root, child, grandchild = drover.name("r"), drover.name("r"), drover.name("r")
    iot.create_thing_group(thingGroupName=root)
    iot.create_thing_group(thingGroupName=child, parentGroupName=root)
    iot.create_thing_group(thingGroupName=grandchild, parentGroupName=child)
    a, b, c = drover.name("t"), drover.name("t"), drover.name("t")
    for t in (a, b, c):
        iot.create_thing(thingName=t)
    iot.add_thing_to_thing_group(thingGroupName=root, thingName=a)
    iot.add_thing_to_thing_group(thingGroupName=child, thingName=b)
    iot.add_thing_to_thing_group(thingGroupName=grandchild, thingName=c)
    assert _members(iot, root) == [a]
    assert _members(iot, root, recursive=False) == [a]
    assert sorted(_members(iot, root, recursive=True)) == sorted([a, b, c])
    assert sorted(_members(iot, child, recursive=True)) == sorted([b, c])
    assert _members(iot, grandchild, recursive=True) == [c]


def test_list_things_in_group_pagination(drover, iot):
    g = drover.name("pm")
    iot.create_thing_group(thingGroupName=g)
    made = {drover.name("t") for _ in range(5)}
    for t in made:
        iot.create_thing(thingName=t)
        iot.add_thing_to_thing_group(thingGroupName=g, thingName=t)
    pages, token = [], None
    while True:
        page = iot.list_things_in_thing_group(thingGroupName=g, maxResults=2, **({"nextToken": token} if token else {}))
        pages.append(page["things"])
        token = page.get("nextToken")
        if not token:
            break
        assert len(pages) < 10
    assert [len(p) for p in pages] == [2, 2, 1]
    assert {t for p in pages for t in p} == made


def test_list_thing_groups_for_thing_pagination(drover, iot):
    t = drover.name("t")
    iot.create_thing(thingName=t)
    made = {drover.name("gft") for _ in range(3)}
    for g in made:
        iot.create_thing_group(thingGroupName=g)
        iot.add_thing_to_thing_group(thingGroupName=g, thingName=t)
    first = iot.list_thing_groups_for_thing(thingName=t, maxResults=2)
    assert len(first["thingGroups"]) == 2 and first.get("nextToken")
    second = iot.list_thing_groups_for_thing(thingName=t, maxResults=2, nextToken=first["nextToken"])
    assert len(second["thingGroups"]) == 1 and not second.get("nextToken")
    assert {g["groupName"] for g in first["thingGroups"] + second["thingGroups"]} == made


def test_listing_membership_of_missing_things_and_groups(drover, iot):
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.list_things_in_thing_group(thingGroupName=drover.name("ghost-group"))
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.list_thing_groups_for_thing(thingName=drover.name("ghost"))


def test_add_with_foreign_or_malformed_arns_changes_nothing(drover, iot):
    g, t = drover.name("arng"), drover.name("t")
    iot.create_thing_group(thingGroupName=g)
    iot.create_thing(thingName=t)
    foreign_thing = f"arn:aws:iot:{drover.region}:000000000000:thing/{t}"
    foreign_group = f"arn:aws:iot:ap-south-1:{drover.account}:thinggroup/{g}"
    for kw in (
        {"thingGroupName": g, "thingArn": foreign_thing},
        {"thingGroupArn": foreign_group, "thingName": t},
        {"thingGroupArn": "not-an-arn", "thingName": t},
        {"thingGroupName": g, "thingArn": drover.arn("thinggroup", t)},
    ):
        with pytest.raises((iot.exceptions.ResourceNotFoundException, iot.exceptions.InvalidRequestException)):
            iot.add_thing_to_thing_group(**kw)
    assert iot.list_things_in_thing_group(thingGroupName=g)["things"] == []
    assert _groups_of(iot, t) == set()
