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
