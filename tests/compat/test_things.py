"""Things with boto3: CreateThing, DescribeThing, UpdateThing, DeleteThing, ListThings; every
error class and that nothing changed after an error."""

import pytest

from conftest import error_code


def _attrs(thing):
    return thing.get("attributes", {})


def _all_things(iot, **kw):
    out, token = [], None
    while True:
        page = iot.list_things(**kw, **({"nextToken": token} if token else {}))
        out += page["things"]
        token = page.get("nextToken")
        if not token:
            return out


# --- CreateThing / DescribeThing --------------------------------------------------------------


def test_create_and_describe_thing(drover, iot):
    name = drover.name("dev")
    out = iot.create_thing(thingName=name, attributePayload={"attributes": {"app_version": "1.0", "site": "lab"}})
    assert out["thingName"] == name
    assert out["thingArn"] == drover.arn("thing", name)
    assert out["thingId"]
    d = iot.describe_thing(thingName=name)
    assert d["thingName"] == name
    assert d["thingArn"] == drover.arn("thing", name)
    assert d["thingId"] == out["thingId"]
    assert d["attributes"] == {"app_version": "1.0", "site": "lab"}
    assert d["version"] == 1
    assert d["defaultClientId"] == name
    assert "thingTypeName" not in d


def test_thing_ids_are_distinct(drover, iot):
    a, b = drover.name("id"), drover.name("id")
    assert iot.create_thing(thingName=a)["thingId"] != iot.create_thing(thingName=b)["thingId"]


def test_thing_without_attributes_describes_empty(drover, iot):
    name = drover.name("bare")
    iot.create_thing(thingName=name)
    d = iot.describe_thing(thingName=name)
    assert _attrs(d) == {}
    assert d["version"] == 1


def test_create_thing_merge_flag_is_ignored(drover, iot):
    name = drover.name("mergecreate")
    iot.create_thing(thingName=name, attributePayload={"attributes": {"a": "1"}, "merge": True})
    assert iot.describe_thing(thingName=name)["attributes"] == {"a": "1"}


def test_identical_create_is_idempotent(drover, iot):
    name = drover.name("idem")
    payload = {"attributes": {"a": "1", "b": "2"}}
    first = iot.create_thing(thingName=name, attributePayload=payload)
    second = iot.create_thing(thingName=name, attributePayload={"attributes": {"b": "2", "a": "1"}})
    assert second["thingId"] == first["thingId"]
    assert second["thingArn"] == first["thingArn"]
    d = iot.describe_thing(thingName=name)
    assert d["version"] == 1
    assert d["attributes"] == {"a": "1", "b": "2"}


def test_create_with_different_attributes_conflicts(drover, iot):
    name = drover.name("dup")
    iot.create_thing(thingName=name, attributePayload={"attributes": {"a": "1"}})
    with pytest.raises(iot.exceptions.ResourceAlreadyExistsException) as ei:
        iot.create_thing(thingName=name, attributePayload={"attributes": {"a": "2"}})
    status, code, msg = error_code(ei)
    assert status == 409 and msg
    # the modeled members of ResourceAlreadyExistsException name the existing thing
    assert ei.value.response.get("resourceArn") == drover.arn("thing", name)
    d = iot.describe_thing(thingName=name)
    assert ei.value.response.get("resourceId") == d["thingId"]
    assert d["attributes"] == {"a": "1"} and d["version"] == 1


def test_create_with_different_type_conflicts(drover, iot):
    name, tt = drover.name("duptype"), drover.name("type")
    iot.create_thing_type(thingTypeName=tt)
    iot.create_thing(thingName=name)
    with pytest.raises(iot.exceptions.ResourceAlreadyExistsException):
        iot.create_thing(thingName=name, thingTypeName=tt)
    assert "thingTypeName" not in iot.describe_thing(thingName=name)


def test_thing_name_with_colon_is_percent_encoded_and_decoded(drover, iot):
    name = drover.name("ns:dev")
    out = iot.create_thing(thingName=name)
    assert out["thingArn"] == drover.arn("thing", name)
    assert iot.describe_thing(thingName=name)["thingName"] == name
    assert name in [t["thingName"] for t in _all_things(iot)]


def test_name_of_128_chars_is_accepted(drover, iot):
    name = ("n128-" + "x" * 200)[:128]
    iot.create_thing(thingName=name)
    assert iot.describe_thing(thingName=name)["thingName"] == name


@pytest.mark.parametrize(
    "bad",
    ["bad!name", "bad name", "has.dot", "x" * 129, "ünïcode"],
    ids=["bang", "space", "dot", "129chars", "unicode"],
)
def test_invalid_thing_name_is_rejected_and_nothing_written(drover, iot, bad):
    before = {t["thingName"] for t in _all_things(iot)}
    with pytest.raises(iot.exceptions.InvalidRequestException) as ei:
        iot.create_thing(thingName=bad, attributePayload={"attributes": {"a": "1"}})
    status, _, msg = error_code(ei)
    assert status == 400 and msg
    after = {t["thingName"] for t in _all_things(iot)}
    assert after == before


@pytest.mark.parametrize(
    "attrs",
    [
        {"k": "has space"},
        {"k" * 129: "v"},
        {"k": "v" * 801},
        {"": "v"},
        {"bad key": "v"},
        {"k": "tab\tchar"},
        {f"a{i}": "v" for i in range(51)},
    ],
    ids=["value-space", "key-129", "value-801", "empty-key", "key-space", "value-tab", "51-attributes"],
)
def test_invalid_attributes_on_create_are_rejected(drover, iot, attrs):
    name = drover.name("badattr")
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.create_thing(thingName=name, attributePayload={"attributes": attrs})
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_thing(thingName=name)


def test_attribute_limits_at_the_boundary_are_accepted(drover, iot):
    name = drover.name("limits")
    attrs = {f"a{i}": "v" for i in range(48)}
    attrs["k" * 128] = "v"
    attrs["big"] = "v" * 800
    assert len(attrs) == 50
    iot.create_thing(thingName=name, attributePayload={"attributes": attrs})
    assert iot.describe_thing(thingName=name)["attributes"] == attrs


def test_attribute_value_charset(drover, iot):
    name = drover.name("charset")
    attrs = {"k_.,@/:#-": "v_.,@/:#=[]-09AZaz", "empty": ""}
    iot.create_thing(thingName=name, attributePayload={"attributes": attrs})
    got = iot.describe_thing(thingName=name)["attributes"]
    assert got["k_.,@/:#-"] == "v_.,@/:#=[]-09AZaz"


def test_create_with_missing_type_is_not_found(drover, iot):
    name = drover.name("notype")
    with pytest.raises(iot.exceptions.ResourceNotFoundException) as ei:
        iot.create_thing(thingName=name, thingTypeName=drover.name("missing-type"))
    assert error_code(ei)[0] == 404
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_thing(thingName=name)


def test_create_with_billing_group_is_not_found(drover, iot):
    # drover has no billing groups (README: naming one gives ResourceNotFoundException)
    name = drover.name("billing")
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.create_thing(thingName=name, billingGroupName="bg1")
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_thing(thingName=name)


def test_describe_missing_thing(drover, iot):
    with pytest.raises(iot.exceptions.ResourceNotFoundException) as ei:
        iot.describe_thing(thingName=drover.name("ghost"))
    status, code, msg = error_code(ei)
    assert (status, code) == (404, "ResourceNotFoundException") and msg


def test_describe_invalid_name_is_invalid_request(drover, iot):
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.describe_thing(thingName="bad!name")


# --- UpdateThing ------------------------------------------------------------------------------


def test_update_replaces_attributes_by_default(drover, iot):
    name = drover.name("replace")
    iot.create_thing(thingName=name, attributePayload={"attributes": {"a": "1", "b": "2"}})
    iot.update_thing(thingName=name, attributePayload={"attributes": {"c": "3"}})
    d = iot.describe_thing(thingName=name)
    assert d["attributes"] == {"c": "3"}
    assert d["version"] == 2


def test_update_with_merge_false_replaces(drover, iot):
    name = drover.name("replace2")
    iot.create_thing(thingName=name, attributePayload={"attributes": {"a": "1", "b": "2"}})
    iot.update_thing(thingName=name, attributePayload={"attributes": {"a": "9"}, "merge": False})
    assert iot.describe_thing(thingName=name)["attributes"] == {"a": "9"}


def test_update_with_empty_attributes_replaces_all(drover, iot):
    name = drover.name("clear")
    iot.create_thing(thingName=name, attributePayload={"attributes": {"a": "1", "b": "2"}})
    iot.update_thing(thingName=name, attributePayload={"attributes": {}})
    assert _attrs(iot.describe_thing(thingName=name)) == {}


def test_update_merge_upserts_and_empty_value_deletes(drover, iot):
    name = drover.name("merge")
    iot.create_thing(thingName=name, attributePayload={"attributes": {"a": "1", "b": "2", "c": "3"}})
    iot.update_thing(thingName=name, attributePayload={"attributes": {"b": "20", "c": "", "d": "4"}, "merge": True})
    d = iot.describe_thing(thingName=name)
    assert d["attributes"] == {"a": "1", "b": "20", "d": "4"}
    assert d["version"] == 2


def test_update_merge_deleting_an_absent_key_is_harmless(drover, iot):
    name = drover.name("merge-absent")
    iot.create_thing(thingName=name, attributePayload={"attributes": {"a": "1"}})
    iot.update_thing(thingName=name, attributePayload={"attributes": {"zzz": ""}, "merge": True})
    assert iot.describe_thing(thingName=name)["attributes"] == {"a": "1"}


def test_update_without_payload_keeps_attributes(drover, iot):
    name, tt = drover.name("keep"), drover.name("type")
    iot.create_thing_type(thingTypeName=tt)
    iot.create_thing(thingName=name, attributePayload={"attributes": {"a": "1"}})
    iot.update_thing(thingName=name, thingTypeName=tt)
    d = iot.describe_thing(thingName=name)
    assert d["attributes"] == {"a": "1"}
    assert d["thingTypeName"] == tt
    assert d["version"] == 2


def test_version_increments_by_one_per_update(drover, iot):
    name = drover.name("ver")
    iot.create_thing(thingName=name)
    assert iot.describe_thing(thingName=name)["version"] == 1
    for i in range(2, 6):
        iot.update_thing(thingName=name, attributePayload={"attributes": {"n": str(i)}, "merge": True})
        assert iot.describe_thing(thingName=name)["version"] == i


def test_update_with_matching_expected_version(drover, iot):
    name = drover.name("cas")
    iot.create_thing(thingName=name)
    iot.update_thing(thingName=name, attributePayload={"attributes": {"a": "1"}}, expectedVersion=1)
    iot.update_thing(thingName=name, attributePayload={"attributes": {"a": "2"}}, expectedVersion=2)
    d = iot.describe_thing(thingName=name)
    assert d["attributes"] == {"a": "2"} and d["version"] == 3


@pytest.mark.parametrize("expected", [0, 2, 99])
def test_update_with_stale_expected_version_conflicts(drover, iot, expected):
    name = drover.name("stale")
    iot.create_thing(thingName=name, attributePayload={"attributes": {"a": "1"}})
    with pytest.raises(iot.exceptions.VersionConflictException) as ei:
        iot.update_thing(thingName=name, attributePayload={"attributes": {"a": "2"}}, expectedVersion=expected)
    status, code, msg = error_code(ei)
    assert (status, code) == (409, "VersionConflictException") and msg
    d = iot.describe_thing(thingName=name)
    assert d["attributes"] == {"a": "1"} and d["version"] == 1


def test_update_missing_thing_is_not_found(drover, iot):
    name = drover.name("ghost")
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.update_thing(thingName=name, attributePayload={"attributes": {"a": "1"}})
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_thing(thingName=name)


@pytest.mark.parametrize(
    "payload",
    [
        {"attributes": {"k": "has space"}},
        {"attributes": {"k" * 129: "v"}},
        {"attributes": {"k": "v" * 801}},
        {"attributes": {f"a{i}": "v" for i in range(51)}},
        {"attributes": {"ok": "1", "bad": "x y"}, "merge": True},
    ],
    ids=["value-space", "key-129", "value-801", "51-attributes", "merge-with-bad-value"],
)
def test_invalid_update_changes_nothing(drover, iot, payload):
    name = drover.name("badupd")
    iot.create_thing(thingName=name, attributePayload={"attributes": {"a": "1"}})
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.update_thing(thingName=name, attributePayload=payload)
    d = iot.describe_thing(thingName=name)
    assert d["attributes"] == {"a": "1"} and d["version"] == 1


def test_merge_beyond_50_attributes_is_rejected(drover, iot):
    name = drover.name("merge50")
    attrs = {f"a{i}": "v" for i in range(50)}
    iot.create_thing(thingName=name, attributePayload={"attributes": attrs})
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.update_thing(thingName=name, attributePayload={"attributes": {"one_more": "v"}, "merge": True})
    d = iot.describe_thing(thingName=name)
    assert d["attributes"] == attrs and d["version"] == 1
    # replacing one (delete + add in one merge) stays within the limit
    iot.update_thing(thingName=name, attributePayload={"attributes": {"a0": "", "one_more": "v"}, "merge": True})
    d = iot.describe_thing(thingName=name)
    assert len(d["attributes"]) == 50 and "one_more" in d["attributes"] and "a0" not in d["attributes"]


def test_update_thing_type_change_and_remove(drover, iot):
    name, t1, t2 = drover.name("typed"), drover.name("type"), drover.name("type")
    iot.create_thing_type(thingTypeName=t1)
    iot.create_thing_type(thingTypeName=t2)
    iot.create_thing(thingName=name, thingTypeName=t1, attributePayload={"attributes": {"a": "1"}})
    assert iot.describe_thing(thingName=name)["thingTypeName"] == t1
    iot.update_thing(thingName=name, thingTypeName=t2)
    assert iot.describe_thing(thingName=name)["thingTypeName"] == t2
    iot.update_thing(thingName=name, removeThingType=True)
    d = iot.describe_thing(thingName=name)
    assert "thingTypeName" not in d
    assert d["attributes"] == {"a": "1"}
    assert d["version"] == 3


def test_update_remove_type_together_with_type_is_invalid(drover, iot):
    name, t1, t2 = drover.name("typed"), drover.name("type"), drover.name("type")
    iot.create_thing_type(thingTypeName=t1)
    iot.create_thing_type(thingTypeName=t2)
    iot.create_thing(thingName=name, thingTypeName=t1)
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.update_thing(thingName=name, thingTypeName=t2, removeThingType=True)
    d = iot.describe_thing(thingName=name)
    assert d["thingTypeName"] == t1 and d["version"] == 1


def test_update_to_missing_type_is_not_found(drover, iot):
    name, t1 = drover.name("typed"), drover.name("type")
    iot.create_thing_type(thingTypeName=t1)
    iot.create_thing(thingName=name, thingTypeName=t1)
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.update_thing(thingName=name, thingTypeName=drover.name("missing-type"))
    d = iot.describe_thing(thingName=name)
    assert d["thingTypeName"] == t1 and d["version"] == 1


# --- DeleteThing ------------------------------------------------------------------------------


def test_delete_thing(drover, iot):
    name = drover.name("del")
    iot.create_thing(thingName=name)
    iot.delete_thing(thingName=name)
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_thing(thingName=name)
    assert name not in {t["thingName"] for t in _all_things(iot)}


def test_delete_missing_thing_succeeds(drover, iot):
    resp = iot.delete_thing(thingName=drover.name("never-existed"))
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_delete_with_stale_expected_version_conflicts(drover, iot):
    name = drover.name("delcas")
    iot.create_thing(thingName=name)
    iot.update_thing(thingName=name, attributePayload={"attributes": {"a": "1"}})
    with pytest.raises(iot.exceptions.VersionConflictException) as ei:
        iot.delete_thing(thingName=name, expectedVersion=1)
    assert error_code(ei)[0] == 409
    d = iot.describe_thing(thingName=name)
    assert d["version"] == 2 and d["attributes"] == {"a": "1"}
    iot.delete_thing(thingName=name, expectedVersion=2)
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_thing(thingName=name)


def test_recreate_after_delete_starts_fresh(drover, iot):
    name = drover.name("again")
    iot.create_thing(thingName=name, attributePayload={"attributes": {"a": "1"}})
    iot.update_thing(thingName=name, attributePayload={"attributes": {"a": "2"}})
    iot.delete_thing(thingName=name)
    iot.create_thing(thingName=name, attributePayload={"attributes": {"b": "1"}})
    d = iot.describe_thing(thingName=name)
    assert d["attributes"] == {"b": "1"} and d["version"] == 1


def test_delete_thing_leaves_its_groups(drover, iot):
    name, group = drover.name("member"), drover.name("grp")
    iot.create_thing(thingName=name)
    iot.create_thing_group(thingGroupName=group)
    iot.add_thing_to_thing_group(thingGroupName=group, thingName=name)
    assert iot.list_things_in_thing_group(thingGroupName=group)["things"] == [name]
    iot.delete_thing(thingName=name)
    assert iot.list_things_in_thing_group(thingGroupName=group)["things"] == []
    # a new thing of the same name is not a member
    iot.create_thing(thingName=name)
    assert iot.list_things_in_thing_group(thingGroupName=group)["things"] == []
    assert iot.list_thing_groups_for_thing(thingName=name)["thingGroups"] == []


# --- ListThings -------------------------------------------------------------------------------


def test_list_things_entries(drover, iot):
    name, tt = drover.name("listed"), drover.name("type")
    iot.create_thing_type(thingTypeName=tt)
    iot.create_thing(thingName=name, thingTypeName=tt, attributePayload={"attributes": {"x": "1"}})
    iot.update_thing(thingName=name, attributePayload={"attributes": {"y": "2"}, "merge": True})
    entry = [t for t in _all_things(iot) if t["thingName"] == name]
    assert entry == [
        {"thingName": name, "thingTypeName": tt, "thingArn": drover.arn("thing", name),
         "attributes": {"x": "1", "y": "2"}, "version": 2}
    ]


def test_list_things_attribute_filter(drover, iot):
    tag = drover.name("batch").replace("-", "_")
    names = [drover.name("f") for _ in range(4)]
    iot.create_thing(thingName=names[0], attributePayload={"attributes": {tag: "v1"}})
    iot.create_thing(thingName=names[1], attributePayload={"attributes": {tag: "v1", "other": "z"}})
    iot.create_thing(thingName=names[2], attributePayload={"attributes": {tag: "v10"}})
    iot.create_thing(thingName=names[3], attributePayload={"attributes": {"other": "v1"}})
    got = {t["thingName"] for t in _all_things(iot, attributeName=tag, attributeValue="v1")}
    assert got == {names[0], names[1]}
    got = {t["thingName"] for t in _all_things(iot, attributeName=tag, attributeValue="v1", usePrefixAttributeValue=True)}
    assert got == {names[0], names[1], names[2]}
    got = {t["thingName"] for t in _all_things(iot, attributeName=tag, attributeValue="v10")}
    assert got == {names[2]}
    assert _all_things(iot, attributeName=tag, attributeValue="nomatch") == []


def test_list_things_type_filter(drover, iot):
    t1, t2 = drover.name("type"), drover.name("type")
    iot.create_thing_type(thingTypeName=t1)
    iot.create_thing_type(thingTypeName=t2)
    a, b, c = drover.name("tf"), drover.name("tf"), drover.name("tf")
    iot.create_thing(thingName=a, thingTypeName=t1)
    iot.create_thing(thingName=b, thingTypeName=t1)
    iot.create_thing(thingName=c, thingTypeName=t2)
    assert {t["thingName"] for t in _all_things(iot, thingTypeName=t1)} == {a, b}
    assert {t["thingName"] for t in _all_things(iot, thingTypeName=t2)} == {c}
    assert all(t["thingTypeName"] == t1 for t in _all_things(iot, thingTypeName=t1))


def test_list_things_pagination(drover, iot):
    tag = drover.name("page").replace("-", "_")
    names = {drover.name("pg") for _ in range(7)}
    for n in names:
        iot.create_thing(thingName=n, attributePayload={"attributes": {tag: "yes"}})
    pages, token = [], None
    while True:
        kw = {"nextToken": token} if token else {}
        page = iot.list_things(maxResults=3, attributeName=tag, attributeValue="yes", **kw)
        pages.append([t["thingName"] for t in page["things"]])
        token = page.get("nextToken")
        if not token:
            break
        assert len(pages) < 10, "pagination does not terminate"
    assert [len(p) for p in pages] == [3, 3, 1]
    flat = [n for p in pages for n in p]
    assert len(flat) == len(set(flat)) == 7
    assert set(flat) == names


def test_list_things_paginator_over_everything(drover, iot):
    for _ in range(5):
        iot.create_thing(thingName=drover.name("pall"))
    full = [t["thingName"] for t in iot.list_things(maxResults=250)["things"]]
    assert len(full) >= 5
    paged = []
    for page in iot.get_paginator("list_things").paginate(PaginationConfig={"PageSize": 2}):
        assert len(page["things"]) <= 2
        paged += [t["thingName"] for t in page["things"]]
    assert sorted(paged) == sorted(full)
    assert len(set(paged)) == len(paged)


@pytest.mark.parametrize("max_results", [0, 251, -1])
def test_list_things_max_results_out_of_range(drover, max_results):
    with pytest.raises(drover.iot_raw.exceptions.InvalidRequestException) as ei:
        drover.iot_raw.list_things(maxResults=max_results)
    assert error_code(ei)[0] == 400


def test_list_things_garbage_next_token(drover):
    with pytest.raises(drover.iot_raw.exceptions.InvalidRequestException):
        drover.iot_raw.list_things(nextToken="not-a-token!!")


def test_list_things_invalid_attribute_filter(drover):
    with pytest.raises(drover.iot_raw.exceptions.InvalidRequestException):
        drover.iot_raw.list_things(attributeName="bad key", attributeValue="v")
    with pytest.raises(drover.iot_raw.exceptions.InvalidRequestException):
        drover.iot_raw.list_things(attributeName="k", attributeValue="bad value")


def test_thing_names_are_case_sensitive(drover, iot):
    base = drover.name("Case")
    iot.create_thing(thingName=base, attributePayload={"attributes": {"v": "upper"}})
    iot.create_thing(thingName=base.lower(), attributePayload={"attributes": {"v": "lower"}})
    assert iot.describe_thing(thingName=base)["attributes"] == {"v": "upper"}
    assert iot.describe_thing(thingName=base.lower())["attributes"] == {"v": "lower"}
    assert iot.describe_thing(thingName=base)["thingId"] != iot.describe_thing(thingName=base.lower())["thingId"]


def test_concurrent_updates_with_same_expected_version_one_wins(drover, iot):
    import threading

    name = drover.name("race")
    iot.create_thing(thingName=name)
    clients = [drover.client() for _ in range(8)]
    results = [None] * 8
    barrier = threading.Barrier(8)

    def worker(i):
        barrier.wait()
        try:
            clients[i].update_thing(thingName=name, expectedVersion=1,
                                    attributePayload={"attributes": {"winner": str(i)}})
            results[i] = "ok"
        except clients[i].exceptions.VersionConflictException:
            results[i] = "conflict"
        except Exception as e:  # noqa: BLE001
            results[i] = repr(e)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(results) == ["conflict"] * 7 + ["ok"], results
    d = iot.describe_thing(thingName=name)
    assert d["version"] == 2
    assert d["attributes"] == {"winner": str(results.index("ok"))}
