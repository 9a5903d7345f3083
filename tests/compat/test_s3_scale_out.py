"""Scale-out artifacts: two drover nodes started with `--artifacts-url` keep their objects in
one external S3-compatible store (here a third drover, through object_store's S3 client), so
an object uploaded through one node is listed and downloaded through the other, and the
external store holds the bytes."""

import hashlib
import os

import pytest
import requests

from conftest import Drover
from drover_proc import DroverProcess


@pytest.fixture
def cluster(tmp_path):
    store = Drover(DroverProcess(tmp_path / "store")).start()
    store.s3_client().create_bucket(Bucket="drover-artifacts")
    env = {"AWS_ACCESS_KEY_ID": store.access_key, "AWS_SECRET_ACCESS_KEY": store.secret_key}
    url = (f"s3://drover-artifacts/prod?endpoint={store.s3_endpoint}&region={store.region}"
           f"&ca_bundle={store.ca}")
    nodes = []
    for name in ("node1", "node2"):
        nodes.append(Drover(DroverProcess(tmp_path / name, extra_args=["--artifacts-url", url], env=env)).start())
    yield store, nodes
    for d in [*nodes, store]:
        d.server.stop()


def test_two_nodes_share_one_external_store(cluster, tmp_path):
    store, (node1, node2) = cluster
    s1, s2 = node1.s3_client(), node2.s3_client()
    s1.create_bucket(Bucket="fw")
    assert "fw" in [b["Name"] for b in s2.list_buckets()["Buckets"]]

    body = os.urandom(300_000)
    put = s1.put_object(Bucket="fw", Key="app/2.0.bin", Body=body, ContentType="application/x-firmware",
                        Metadata={"version": "2.0"})
    got = s2.get_object(Bucket="fw", Key="app/2.0.bin")
    assert got["Body"].read() == body
    assert got["ETag"] == put["ETag"] == '"%s"' % hashlib.md5(body).hexdigest()
    assert got["ContentType"] == "application/x-firmware" and got["Metadata"] == {"version": "2.0"}
    r = s2.get_object(Bucket="fw", Key="app/2.0.bin", Range="bytes=1000-1999")
    assert r["Body"].read() == body[1000:2000] and r["ContentRange"] == "bytes 1000-1999/300000"

    # The awscli on node 2 uploads 20 MB (multipart); node 1 serves it back through a presigned URL.
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(20 << 20))
    node2.awscli("s3", "cp", "--only-show-errors", str(big), "s3://fw/big.bin")
    url = node1.s3_client(signature_version="s3v4").generate_presigned_url(
        "get_object", Params={"Bucket": "fw", "Key": "big.bin"}, ExpiresIn=60)
    r = requests.get(url, verify=node1.ca, timeout=60)
    assert r.status_code == 200 and hashlib.sha256(r.content).digest() == hashlib.sha256(big.read_bytes()).digest()

    listing = s1.list_objects_v2(Bucket="fw", Delimiter="/")
    assert [o["Key"] for o in listing["Contents"]] == ["big.bin"]
    assert [p["Prefix"] for p in listing["CommonPrefixes"]] == ["app/"]
    s2.copy_object(Bucket="fw", Key="app/copy.bin", CopySource={"Bucket": "fw", "Key": "app/2.0.bin"})
    assert s1.get_object(Bucket="fw", Key="app/copy.bin")["Body"].read() == body

    # The bytes live in the external store, not in either node's data directory.
    external = [o["Key"] for o in store.s3_client().list_objects_v2(Bucket="drover-artifacts")["Contents"]]
    assert any(k.startswith("prod/objects/fw/") for k in external), external
    for node in (node1, node2):
        assert not list((node.data_dir / "artifacts").rglob("objects"))

    s1.delete_object(Bucket="fw", Key="app/2.0.bin")
    with pytest.raises(Exception):
        s2.head_object(Bucket="fw", Key="app/2.0.bin")
    with pytest.raises(Exception) as e:
        s2.delete_bucket(Bucket="fw")
    assert "BucketNotEmpty" in str(e.value)


def test_job_document_source_in_the_external_store(cluster):
    """CreateJob reads a `documentSource` object that lives in the external store (through
    either node), presigns its placeholders for the node's own S3 endpoint, and refuses a
    missing, oversized or non-JSON object without storing a job."""
    import json

    from botocore.exceptions import ClientError

    from jobs_helpers import jobs_data_client

    store, (node1, node2) = cluster
    node2.s3_client().create_bucket(Bucket="jobdocs")
    doc = {"operation": "install", "url": "${aws:iot:s3-presigned-url:s3://jobdocs/app.bin}"}
    node2.s3_client().put_object(Bucket="jobdocs", Key="jobs/install.json", Body=json.dumps(doc).encode())
    node2.s3_client().put_object(Bucket="jobdocs", Key="app.bin", Body=b"firmware")
    node2.s3_client().put_object(Bucket="jobdocs", Key="jobs/bad.json", Body=b"{not json")
    node2.s3_client().put_object(Bucket="jobdocs", Key="jobs/big.json",
                                 Body=json.dumps({"pad": "x" * 40_000}).encode())
    # The bytes are in the external store, not in either node's data directory.
    assert store.s3_client().list_objects_v2(Bucket="drover-artifacts", Prefix="prod/")["KeyCount"] >= 4

    iot, data = node1.iot, jobs_data_client(node1)
    iot.create_thing(thingName="ext-1")
    target = [node1.arn("thing", "ext-1")]
    for source in ("s3://jobdocs/jobs/install.json",
                   f"https://s3.{node1.region}.amazonaws.com/jobdocs/jobs/install.json",
                   f"{node1.s3_endpoint}/jobdocs/jobs/install.json"):
        job_id = f"ext-{abs(hash(source)) % 10**8}"
        iot.create_job(jobId=job_id, targets=target, documentSource=source)
        assert iot.describe_job(jobId=job_id)["documentSource"] == source
        assert json.loads(iot.get_job_document(jobId=job_id)["document"]) == doc
        # The device receives the document with the placeholder presigned for node 1's S3 API.
        execution = data.describe_job_execution(jobId=job_id, thingName="ext-1", includeJobDocument=True)["execution"]
        presigned = json.loads(execution["jobDocument"])["url"]
        assert presigned.startswith(node1.s3_endpoint), presigned
        r = requests.get(presigned, verify=node1.ca, timeout=30)
        assert r.status_code == 200 and r.content == b"firmware"

    for key in ("jobs/missing.json", "jobs/bad.json", "jobs/big.json"):
        job_id = "ext-bad-" + key.split("/")[1].split(".")[0]
        with pytest.raises(ClientError) as e:
            iot.create_job(jobId=job_id, targets=target, documentSource=f"s3://jobdocs/{key}")
        assert e.value.response["Error"]["Code"] in ("InvalidRequestException", "ResourceNotFoundException"), key
        with pytest.raises(ClientError) as e:
            iot.describe_job(jobId=job_id)
        assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert iot.list_job_executions_for_thing(thingName="ext-1")["executionSummaries"] != []
