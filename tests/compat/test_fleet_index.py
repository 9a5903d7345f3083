"""Fleet indexing and dynamic thing groups with the real awscli and boto3: the version-targeted
update scenario from DESIGN.md under each attribute typing, SearchIndex, GetStatistics and
GetCardinality, the indexing switch, and bad queries that must be refused with a position and
change nothing."""

import json

import pytest
from botocore.exceptions import ClientError

from conftest import error_code


def enable_indexing(drover, custom_fields=None, connectivity="OFF"):
    config = {"thingIndexingMode": "REGISTRY", "thingConnectivityIndexingMode": connectivity}
    if custom_fields is not None:
        config["customFields"] = custom_fields
    drover.aws("update-indexing-configuration", "--thing-indexing-configuration", json.dumps(config))


def members(drover, group):
    out = drover.aws("list-things-in-thing-group", "--thing-group-name", group).json
    return sorted(out["things"])


def make_things(drover, versions, prefix="dev"):
    names = {}
    for version in versions:
        name = f"{prefix}-{version.replace('.', '_')}"
        drover.aws("create-thing", "--thing-name", name,
                   "--attribute-payload", json.dumps({"attributes": {"app_version": version}}))
        names[version] = name
    return names


def test_version_targeted_group_under_each_typing(fresh_drover):
    d = fresh_drover
    enable_indexing(d)
    things = make_things(d, ["1.0", "1.5", "2.0", "2.1", "10.0"])
    out = d.aws("create-dynamic-thing-group", "--thing-group-name", "appver_lt_20",
                "--query-string", "attributes.app_version < 2.0").json
    assert out["thingGroupArn"] == d.arn("thinggroup", "appver_lt_20")
    assert out["queryString"] == "attributes.app_version < 2.0"
    assert out["indexName"] == "AWS_Things" and out["queryVersion"] == "2017-09-30"

    # AWS's default typing: attributes are strings, so "10.0" sorts below "2.0".
    assert members(d, "appver_lt_20") == sorted([things["1.0"], things["1.5"], things["10.0"]])
    described = d.aws("describe-thing-group", "--thing-group-name", "appver_lt_20").json
    assert described["status"] == "ACTIVE"
    assert described["queryString"] == "attributes.app_version < 2.0"
    groups = d.aws("list-thing-groups-for-thing", "--thing-name", things["1.0"]).json["thingGroups"]
    assert [g["groupName"] for g in groups] == ["appver_lt_20"]

    # Declared a Number, app_version compares numerically; the group is rebuilt at once.
    enable_indexing(d, [{"name": "attributes.app_version", "type": "Number"}])
    got = d.aws("get-indexing-configuration").json["thingIndexingConfiguration"]
    assert {"name": "attributes.app_version", "type": "Number"} in got["customFields"]
    assert members(d, "appver_lt_20") == sorted([things["1.0"], things["1.5"]])

    # A member updated to 2.0 leaves before the update call returns.
    d.aws("update-thing", "--thing-name", things["1.5"],
          "--attribute-payload", '{"attributes":{"app_version":"2.0"},"merge":true}')
    assert members(d, "appver_lt_20") == [things["1.0"]]
    # A new thing that matches joins on creation; deleting it leaves the group.
    d.aws("create-thing", "--thing-name", "late", "--attribute-payload", '{"attributes":{"app_version":"0.9"}}')
    assert members(d, "appver_lt_20") == sorted([things["1.0"], "late"])
    d.aws("delete-thing", "--thing-name", "late")
    assert members(d, "appver_lt_20") == [things["1.0"]]

    # drover's Version type: 1.9 < 1.10, which neither strings nor numbers get right.
    make_things(d, ["1.9", "1.10"], prefix="rel")
    d.aws("create-dynamic-thing-group", "--thing-group-name", "below_1_10",
          "--query-string", "attributes.app_version < 1.10")
    # As a Number, 1.10 is 1.1, so 1.9 is not below it.
    assert members(d, "below_1_10") == [things["1.0"]]
    enable_indexing(d, [{"name": "attributes.app_version", "type": "Version"}])
    assert members(d, "below_1_10") == sorted([things["1.0"], "rel-1_9"])
    assert "rel-1_10" not in members(d, "below_1_10")
    d.aws("update-dynamic-thing-group", "--thing-group-name", "below_1_10",
          "--thing-group-properties", "{}", "--query-string", "attributes.app_version > 1.9")
    assert members(d, "below_1_10") == sorted(["rel-1_10", things["1.5"], things["2.0"], things["2.1"], things["10.0"]])


def test_dynamic_group_rules(fresh_drover):
    d = fresh_drover
    enable_indexing(d)
    d.aws("create-thing", "--thing-name", "plain")
    d.aws("create-dynamic-thing-group", "--thing-group-name", "dyn", "--query-string", "thingName:plain")
    assert members(d, "dyn") == ["plain"]
    # Members of a dynamic group are chosen by its query only.
    d.aws("create-thing", "--thing-name", "other")
    d.aws_error("add-thing-to-thing-group", "--thing-group-name", "dyn", "--thing-name", "other",
                code="InvalidRequestException")
    d.aws_error("remove-thing-from-thing-group", "--thing-group-name", "dyn", "--thing-name", "plain",
                code="InvalidRequestException")
    assert members(d, "dyn") == ["plain"]
    # An identical create is idempotent; a different query under the same name is refused.
    d.aws("create-dynamic-thing-group", "--thing-group-name", "dyn", "--query-string", "thingName:plain")
    d.aws_error("create-dynamic-thing-group", "--thing-group-name", "dyn", "--query-string", "thingName:other",
                code="ResourceAlreadyExistsException")
    # Versions: update bumps it; a stale expected version conflicts and changes nothing.
    v = d.aws("update-dynamic-thing-group", "--thing-group-name", "dyn",
              "--thing-group-properties", '{"thingGroupDescription":"d"}').json["version"]
    assert v == 2
    d.aws_error("update-dynamic-thing-group", "--thing-group-name", "dyn", "--thing-group-properties", "{}",
                "--query-string", "thingName:other", "--expected-version", "1", code="VersionConflictException")
    assert members(d, "dyn") == ["plain"]
    # Static thingGroupNames feed dynamic queries.
    d.aws("create-thing-group", "--thing-group-name", "line-a")
    d.aws("create-dynamic-thing-group", "--thing-group-name", "on_line_a", "--query-string", "thingGroupNames:line-a")
    assert members(d, "on_line_a") == []
    d.aws("add-thing-to-thing-group", "--thing-group-name", "line-a", "--thing-name", "other")
    assert members(d, "on_line_a") == ["other"]
    d.aws("remove-thing-from-thing-group", "--thing-group-name", "line-a", "--thing-name", "other")
    assert members(d, "on_line_a") == []
    # Indexing cannot be turned off under dynamic groups; the static operation refuses too.
    d.aws_error("update-indexing-configuration", "--thing-indexing-configuration", '{"thingIndexingMode":"OFF"}',
                code="InvalidRequestException")
    assert d.aws("get-indexing-configuration").json["thingIndexingConfiguration"]["thingIndexingMode"] == "REGISTRY"
    d.aws_error("delete-dynamic-thing-group", "--thing-group-name", "line-a", code="InvalidRequestException")
    d.aws("delete-dynamic-thing-group", "--thing-group-name", "dyn")
    d.aws("delete-dynamic-thing-group", "--thing-group-name", "on_line_a")
    d.aws_error("describe-thing-group", "--thing-group-name", "dyn", code="ResourceNotFoundException")
    assert d.aws("list-thing-groups-for-thing", "--thing-name", "plain").json["thingGroups"] == []
    d.aws("update-indexing-configuration", "--thing-indexing-configuration", '{"thingIndexingMode":"OFF"}')


def test_indexing_off_gives_the_aws_error(fresh_drover):
    d = fresh_drover
    got = d.aws("get-indexing-configuration").json
    assert got["thingIndexingConfiguration"]["thingIndexingMode"] == "OFF"
    res = d.aws_error("search-index", "--query-string", "thingName:*", code="ResourceNotFoundException")
    assert "Index AWS_Things does not exist" in res.stderr
    d.aws_error("create-dynamic-thing-group", "--thing-group-name", "g", "--query-string", "thingName:a",
                code="ResourceNotFoundException")
    d.aws_error("describe-thing-group", "--thing-group-name", "g", code="ResourceNotFoundException")
    enable_indexing(d)
    d.aws_error("search-index", "--index-name", "AWS_ThingGroups", "--query-string", "x",
                code="ResourceNotFoundException")
    d.aws_error("update-indexing-configuration", "--thing-indexing-configuration",
                '{"thingIndexingMode":"SOMETIMES"}', code="InvalidRequestException")
    d.aws_error("update-indexing-configuration", "--thing-indexing-configuration",
                '{"thingIndexingMode":"REGISTRY","customFields":[{"name":"thingName","type":"Number"}]}',
                code="InvalidRequestException")
    assert d.aws("get-indexing-configuration").json["thingIndexingConfiguration"].get("customFields", []) == []


BAD_QUERIES = [
    ("(attributes.app_version < 2.0", "position 30"),
    ("attributes.app_version < 2.0)", "position 29"),
    ("attributes.app_version = 2.0", "position 24"),
    ("thingName:a~2", "position 12"),
    ("thingName:a && thingName:b", "position 13"),
    ("attributes.app_version:" + "9" * 10240, "position 4097"),
    ("colour:red", "position 1"),
    ("   ", "position 1"),
]


@pytest.mark.parametrize("query,position", BAD_QUERIES)
def test_bad_queries_are_refused_with_a_position(drover, query, position):
    iot = drover.client(validate=False)
    try:
        iot.update_indexing_configuration(thingIndexingConfiguration={"thingIndexingMode": "REGISTRY"})
    except ClientError:
        pass
    group = drover.name("badq")
    with pytest.raises(ClientError) as e:
        iot.create_dynamic_thing_group(thingGroupName=group, queryString=query)
    status, code, message = error_code(e)
    assert (status, code) == (400, "InvalidQueryException"), message
    assert position in message, message
    with pytest.raises(ClientError) as e:
        iot.describe_thing_group(thingGroupName=group)
    assert error_code(e)[1] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as e:
        iot.search_index(queryString=query)
    assert error_code(e)[:2] == (400, "InvalidQueryException")


def test_empty_query_is_refused(drover):
    iot = drover.client(validate=False)
    iot.update_indexing_configuration(thingIndexingConfiguration={"thingIndexingMode": "REGISTRY"})
    with pytest.raises(ClientError) as e:
        iot.search_index(queryString="")
    assert error_code(e)[:2] == (400, "InvalidQueryException")


def test_search_index_pages_and_documents(drover):
    iot = drover.iot
    iot.update_indexing_configuration(thingIndexingConfiguration={"thingIndexingMode": "REGISTRY"})
    group = drover.name("srchgrp")
    iot.create_thing_group(thingGroupName=group)
    names = [f"srch-{i:02d}" for i in range(7)]
    for i, name in enumerate(names):
        iot.create_thing(thingName=name, attributePayload={"attributes": {"slot": str(i), "Colour": "Red" if i % 2 else "blue"}})
    iot.add_thing_to_thing_group(thingGroupName=group, thingName=names[0])

    seen, token = [], None
    while True:
        kwargs = {"queryString": "thingName:SRCH-*", "maxResults": 3}
        if token:
            kwargs["nextToken"] = token
        page = iot.search_index(**kwargs)
        assert len(page["things"]) <= 3
        seen += [t["thingName"] for t in page["things"]]
        token = page.get("nextToken")
        if not token:
            break
    assert seen == names

    first = iot.search_index(queryString=f"thingGroupNames:{group}")["things"]
    assert len(first) == 1
    doc = first[0]
    assert doc["thingName"] == names[0] and doc["thingGroupNames"] == [group]
    assert doc["attributes"] == {"slot": "0", "Colour": "blue"}
    assert doc["thingId"] == iot.describe_thing(thingName=names[0])["thingId"]

    red = iot.search_index(queryString="thingName:srch* AND attributes.Colour:RED")["things"]
    assert [t["thingName"] for t in red] == [names[1], names[3], names[5]]
    none = iot.search_index(queryString="thingName:srch* AND NOT attributes.slot:[0 TO 5]")["things"]
    assert [t["thingName"] for t in none] == [names[6]]
    assert iot.search_index(queryString="shadow.reported.temp > 3")["things"] == []

    stats = iot.get_statistics(queryString="thingName:srch*")["statistics"]
    assert stats["count"] == 7
    assert iot.get_cardinality(queryString="thingName:srch*", aggregationField="attributes.Colour")["cardinality"] == 2
    with pytest.raises(ClientError) as e:
        iot.search_index(queryString="thingName:srch*", maxResults=501)
    assert error_code(e)[1] == "InvalidRequestException"


def test_statistics_over_a_number_field(fresh_drover):
    iot = fresh_drover.iot
    iot.update_indexing_configuration(thingIndexingConfiguration={
        "thingIndexingMode": "REGISTRY",
        "customFields": [{"name": "attributes.temp", "type": "Number"}],
    })
    for i, t in enumerate(["2", "4", "4", "4", "5", "5", "7", "9", "hot"]):
        iot.create_thing(thingName=f"s{i}", attributePayload={"attributes": {"temp": t}})
    stats = iot.get_statistics(queryString="thingName:s*", aggregationField="attributes.temp")["statistics"]
    assert stats["count"] == 8
    assert stats["average"] == 5.0 and stats["minimum"] == 2.0 and stats["maximum"] == 9.0
    assert stats["stdDeviation"] == 2.0
    assert iot.search_index(queryString="attributes.temp >= 5")["things"].__len__() == 4
    with pytest.raises(ClientError) as e:
        iot.search_index(queryString="attributes.temp > warm")
    status, code, message = error_code(e)
    assert code == "InvalidQueryException" and "not a number" in message
