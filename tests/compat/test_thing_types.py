"""Thing types with boto3: CreateThingType, DescribeThingType, ListThingTypes,
DeprecateThingType (and undo), DeleteThingType, and how types gate things."""

import datetime

import pytest

from conftest import error_code


def _now():
    return datetime.datetime.now(datetime.timezone.utc)


def _all_types(iot, **kw):
    out, token = [], None
    while True:
        page = iot.list_thing_types(**kw, **({"nextToken": token} if token else {}))
        out += page["thingTypes"]
        token = page.get("nextToken")
        if not token:
            return out


def test_create_and_describe_thing_type(drover, iot):
    tt = drover.name("sensor")
    props = {"thingTypeDescription": "Temperature sensor, rev 2", "searchableAttributes": ["serial", "model"]}
    out = iot.create_thing_type(thingTypeName=tt, thingTypeProperties=props)
    assert out["thingTypeName"] == tt
    assert out["thingTypeArn"] == drover.arn("thingtype", tt)
    assert out["thingTypeId"]
    d = iot.describe_thing_type(thingTypeName=tt)
    assert d["thingTypeName"] == tt
    assert d["thingTypeArn"] == drover.arn("thingtype", tt)
    assert d["thingTypeId"] == out["thingTypeId"]
    assert d["thingTypeProperties"]["thingTypeDescription"] == "Temperature sensor, rev 2"
    assert d["thingTypeProperties"]["searchableAttributes"] == ["serial", "model"]
    meta = d["thingTypeMetadata"]
    assert meta["deprecated"] is False
    assert "deprecationDate" not in meta
    assert isinstance(meta["creationDate"], datetime.datetime)
    assert abs((_now() - meta["creationDate"]).total_seconds()) < 300


def test_create_thing_type_without_properties(drover, iot):
    tt = drover.name("plain")
    iot.create_thing_type(thingTypeName=tt)
    d = iot.describe_thing_type(thingTypeName=tt)
    assert d["thingTypeName"] == tt
    assert d["thingTypeMetadata"]["deprecated"] is False


def test_create_thing_type_with_different_properties_conflicts(drover, iot):
    tt = drover.name("duptype")
    iot.create_thing_type(thingTypeName=tt, thingTypeProperties={"thingTypeDescription": "one"})
    with pytest.raises(iot.exceptions.ResourceAlreadyExistsException) as ei:
        iot.create_thing_type(thingTypeName=tt, thingTypeProperties={"thingTypeDescription": "two"})
    assert error_code(ei)[0] == 409
    assert iot.describe_thing_type(thingTypeName=tt)["thingTypeProperties"]["thingTypeDescription"] == "one"


@pytest.mark.parametrize("bad", ["bad!type", "x" * 129, "sp ace"], ids=["bang", "129chars", "space"])
def test_invalid_thing_type_name(drover, iot, bad):
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.create_thing_type(thingTypeName=bad)
    assert bad not in [t["thingTypeName"] for t in _all_types(iot)]


def test_invalid_searchable_attribute_name(drover, iot):
    tt = drover.name("badsearch")
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.create_thing_type(thingTypeName=tt, thingTypeProperties={"searchableAttributes": ["has space"]})
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_thing_type(thingTypeName=tt)


def test_more_than_three_searchable_attributes_is_rejected(drover, iot):
    # AWS quota: a thing type has at most 3 searchable attributes.
    tt = drover.name("search4")
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.create_thing_type(thingTypeName=tt, thingTypeProperties={"searchableAttributes": ["a", "b", "c", "d"]})
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_thing_type(thingTypeName=tt)


def test_describe_missing_thing_type(drover, iot):
    with pytest.raises(iot.exceptions.ResourceNotFoundException) as ei:
        iot.describe_thing_type(thingTypeName=drover.name("ghost-type"))
    assert error_code(ei)[:2] == (404, "ResourceNotFoundException")


def test_list_thing_types_entries_and_filter(drover, iot):
    tt = drover.name("listtype")
    iot.create_thing_type(thingTypeName=tt, thingTypeProperties={"thingTypeDescription": "d"})
    other = drover.name("listtype")
    iot.create_thing_type(thingTypeName=other)
    got = iot.list_thing_types(thingTypeName=tt)["thingTypes"]
    assert len(got) == 1
    entry = got[0]
    assert entry["thingTypeName"] == tt
    assert entry["thingTypeArn"] == drover.arn("thingtype", tt)
    assert entry["thingTypeProperties"]["thingTypeDescription"] == "d"
    assert entry["thingTypeMetadata"]["deprecated"] is False
    assert isinstance(entry["thingTypeMetadata"]["creationDate"], datetime.datetime)
    names = [t["thingTypeName"] for t in _all_types(iot)]
    assert tt in names and other in names


def test_list_thing_types_pagination(drover, iot):
    made = {drover.name("ptype") for _ in range(5)}
    for tt in made:
        iot.create_thing_type(thingTypeName=tt)
    full = [t["thingTypeName"] for t in iot.list_thing_types(maxResults=250)["thingTypes"]]
    pages, token = [], None
    while True:
        page = iot.list_thing_types(maxResults=2, **({"nextToken": token} if token else {}))
        assert len(page["thingTypes"]) <= 2
        pages.append([t["thingTypeName"] for t in page["thingTypes"]])
        token = page.get("nextToken")
        if not token:
            break
        assert len(pages) < 500
    flat = [n for p in pages for n in p]
    assert len(flat) == len(set(flat))
    assert sorted(flat) == sorted(full)
    assert made <= set(flat)
    assert len(pages) >= 3


def test_list_thing_types_max_results_out_of_range(drover):
    for bad in (0, 251):
        with pytest.raises(drover.iot_raw.exceptions.InvalidRequestException):
            drover.iot_raw.list_thing_types(maxResults=bad)


def test_deprecate_and_undo(drover, iot):
    tt = drover.name("deptype")
    iot.create_thing_type(thingTypeName=tt)
    iot.deprecate_thing_type(thingTypeName=tt)
    meta = iot.describe_thing_type(thingTypeName=tt)["thingTypeMetadata"]
    assert meta["deprecated"] is True
    assert isinstance(meta["deprecationDate"], datetime.datetime)
    assert abs((_now() - meta["deprecationDate"]).total_seconds()) < 300
    listed = iot.list_thing_types(thingTypeName=tt)["thingTypes"][0]["thingTypeMetadata"]
    assert listed["deprecated"] is True
    iot.deprecate_thing_type(thingTypeName=tt, undoDeprecate=True)
    meta = iot.describe_thing_type(thingTypeName=tt)["thingTypeMetadata"]
    assert meta["deprecated"] is False
    # usable again
    thing = drover.name("undone")
    iot.create_thing(thingName=thing, thingTypeName=tt)
    assert iot.describe_thing(thingName=thing)["thingTypeName"] == tt


def test_deprecate_missing_type(drover, iot):
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.deprecate_thing_type(thingTypeName=drover.name("ghost-type"))


def test_create_thing_with_deprecated_type_is_rejected(drover, iot):
    tt, thing = drover.name("deptype"), drover.name("t")
    iot.create_thing_type(thingTypeName=tt)
    iot.deprecate_thing_type(thingTypeName=tt)
    with pytest.raises(iot.exceptions.InvalidRequestException) as ei:
        iot.create_thing(thingName=thing, thingTypeName=tt)
    assert error_code(ei)[0] == 400
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_thing(thingName=thing)


def test_update_thing_to_deprecated_type_is_rejected(drover, iot):
    tt, thing = drover.name("deptype"), drover.name("t")
    iot.create_thing_type(thingTypeName=tt)
    iot.deprecate_thing_type(thingTypeName=tt)
    iot.create_thing(thingName=thing)
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.update_thing(thingName=thing, thingTypeName=tt)
    d = iot.describe_thing(thingName=thing)
    assert "thingTypeName" not in d and d["version"] == 1


def test_things_keep_a_type_deprecated_later(drover, iot):
    tt, thing = drover.name("deptype"), drover.name("t")
    iot.create_thing_type(thingTypeName=tt)
    iot.create_thing(thingName=thing, thingTypeName=tt, attributePayload={"attributes": {"a": "1"}})
    iot.deprecate_thing_type(thingTypeName=tt)
    assert iot.describe_thing(thingName=thing)["thingTypeName"] == tt
    assert [t["thingName"] for t in iot.list_things(thingTypeName=tt)["things"]] == [thing]
    # attributes can still be updated on such a thing
    iot.update_thing(thingName=thing, attributePayload={"attributes": {"a": "2"}})
    assert iot.describe_thing(thingName=thing)["attributes"] == {"a": "2"}


def test_delete_thing_type_requires_deprecation(drover, iot):
    tt = drover.name("deltype")
    iot.create_thing_type(thingTypeName=tt)
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.delete_thing_type(thingTypeName=tt)
    assert iot.describe_thing_type(thingTypeName=tt)["thingTypeMetadata"]["deprecated"] is False
    iot.deprecate_thing_type(thingTypeName=tt)
    iot.delete_thing_type(thingTypeName=tt)
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_thing_type(thingTypeName=tt)
    assert iot.list_thing_types(thingTypeName=tt)["thingTypes"] == []


def test_delete_thing_type_in_use_is_rejected(drover, iot):
    tt, thing = drover.name("usedtype"), drover.name("t")
    iot.create_thing_type(thingTypeName=tt)
    iot.create_thing(thingName=thing, thingTypeName=tt)
    iot.deprecate_thing_type(thingTypeName=tt)
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.delete_thing_type(thingTypeName=tt)
    assert iot.describe_thing_type(thingTypeName=tt)["thingTypeMetadata"]["deprecated"] is True
    assert iot.describe_thing(thingName=thing)["thingTypeName"] == tt
    # once the thing drops the type, the type can go
    iot.update_thing(thingName=thing, removeThingType=True)
    iot.delete_thing_type(thingTypeName=tt)
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_thing_type(thingTypeName=tt)


def test_delete_missing_thing_type(drover, iot):
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.delete_thing_type(thingTypeName=drover.name("ghost-type"))


def test_recreated_type_is_a_new_type(drover, iot):
    tt = drover.name("again")
    first = iot.create_thing_type(thingTypeName=tt, thingTypeProperties={"thingTypeDescription": "one"})
    iot.deprecate_thing_type(thingTypeName=tt)
    iot.delete_thing_type(thingTypeName=tt)
    second = iot.create_thing_type(thingTypeName=tt, thingTypeProperties={"thingTypeDescription": "two"})
    d = iot.describe_thing_type(thingTypeName=tt)
    assert d["thingTypeProperties"]["thingTypeDescription"] == "two"
    assert d["thingTypeMetadata"]["deprecated"] is False
    assert second["thingTypeArn"] == first["thingTypeArn"]
