"""`report` on logdirs TensorBoard's file-system layer reads: ``s3://`` against a local S3 server
(moto's, started and stopped here) gives the same JSON as the local copy; ``gs://`` offline
ends in exit 2 with one clear line.
"""

import json
import os
import pathlib
import subprocess
import sys

import gate_runs
import pytest

from tb_metricsdiag import cli

ROOT = pathlib.Path(__file__).resolve().parent.parent
REQUIRE = ["--require", "recall[*] >= 0.8", "--require", "ap[macro] > 0.5"]


@pytest.fixture(scope="module")
def local_logdir(tmp_path_factory):
    runs = {name: gate_runs.RUNS[name] for name in ("fraud", "production")}
    return gate_runs.write_gate_logdir(tmp_path_factory.mktemp("local"), runs).logdir


@pytest.fixture(scope="module")
def s3_server():
    pytest.importorskip("boto3")
    moto_server = pytest.importorskip("moto.server")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = dict(
        os.environ,
        S3_ENDPOINT="http://%s:%d" % (host, port),
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
    )
    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        env.pop(key, None)
    yield env
    server.stop()


def upload(env, local, bucket, prefix):
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=env["S3_ENDPOINT"],
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )
    client.create_bucket(Bucket=bucket)
    for path in pathlib.Path(local).rglob("*"):
        if path.is_file():
            key = "%s/%s" % (prefix, path.relative_to(local).as_posix())
            client.upload_file(str(path), bucket, key)


def console(env, *argv):
    """The console script in a new process (TensorBoard's file layer is chosen per process);
    its stderr ends in whether it imported TensorFlow.
    """
    code = (
        "import sys; from tb_metricsdiag import cli; status = cli.console_main();"
        " print('tensorflow' in sys.modules, file=sys.stderr); sys.exit(status)"
    )
    return subprocess.run(
        [sys.executable, "-c", code, *argv],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=dict(env, PYTHONPATH=str(ROOT)),
        timeout=120,
    )


def test_s3_logdir_gives_the_same_report_as_the_local_copy(local_logdir, s3_server, capsys):
    upload(s3_server, local_logdir, "experiments", "team/logs")
    argv = ["report", "--format", "json", *REQUIRE]
    status = cli.main([argv[0], local_logdir, *argv[1:]])
    local, _ = capsys.readouterr()
    remote = console(s3_server, argv[0], "s3://experiments/team/logs", *argv[1:])
    assert remote.returncode == status, remote.stderr
    assert remote.stderr.splitlines()[-1] == "False"  # read by TensorBoard's stub, with boto3
    assert json.loads(remote.stdout) == json.loads(local)
    assert [run["run"] for run in json.loads(local)["runs"]] == ["fraud", "production"]
    baseline = console(
        s3_server,
        "report",
        local_logdir + "/fraud",
        "--format",
        "json",
        "--require",
        "f1 >= baseline - 0.5",
        "--baseline",
        "s3://experiments/team/logs/production",
    )
    assert baseline.returncode == 0, baseline.stderr
    (run,) = json.loads(baseline.stdout)["runs"]
    assert run["requirements"][0]["baseline"] is not None


def test_s3_missing_bucket_or_prefix_exits_2_in_one_line(s3_server):
    for url, reason in (
        ("s3://no-such-bucket/logs", "cannot read LOGDIR s3://no-such-bucket/logs"),
        ("s3://experiments/nothing/here", "does not exist"),
    ):
        result = console(s3_server, "report", url)
        assert result.returncode == 2 and result.stdout == ""
        assert reason in result.stderr and "Traceback" not in result.stderr
        assert result.stderr.strip().splitlines()[:-1] == [result.stderr.splitlines()[0]]


def test_gs_logdir_goes_to_tensorboards_file_layer_and_fails_cleanly(capsys, monkeypatch):
    from tensorboard.compat import tf

    seen = []
    real_exists = tf.io.gfile.exists

    def exists(path):
        seen.append(path)
        return real_exists(path)

    monkeypatch.setattr(tf.io.gfile, "exists", exists)
    status, out, err = (cli.main(["report", "gs://tbmd-no-such-bucket/logs"]), *capsys.readouterr())
    assert seen == ["gs://tbmd-no-such-bucket/logs"]
    assert status == 2 and out == ""
    assert "LOGDIR gs://tbmd-no-such-bucket/logs" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_which_file_layer_reads_which_scheme(monkeypatch):
    assert cli._tensorflow_free(["/tmp/logs", "relative/logs"])
    assert cli._tensorflow_free(["s3://bucket/logs"])  # boto3 is installed for these tests
    with_tensorflow = cli.importlib.util.find_spec("tensorflow") is not None
    assert cli._tensorflow_free(["gs://bucket/logs"]) is not with_tensorflow
