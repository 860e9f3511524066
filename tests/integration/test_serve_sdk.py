"""`smlaunch serve` driven by the SageMaker Python SDK's own serializers, deserializers and
local-mode transport (LocalSagemakerRuntimeClient.invoke_endpoint, urllib3), run by the
SDK's test-only venv (`.cache/sdk` of the checkout, made by docker/ci.sh; or the Python in
SMLAUNCH_TEST_SDK_PYTHON). Skipped, saying why, when neither is there."""
import json
import os
import subprocess
import unittest

import harness
from test_serve import NUMPY_MODULE, Server, require_numpy

SDK_PYTHON = os.environ.get("SMLAUNCH_TEST_SDK_PYTHON") or os.path.join(harness.SOURCE_DIR, ".cache", "sdk", "bin", "python")

# Run by the SDK's Python: every serializer/deserializer pair the Chainer predictor can
# use, through the SDK's own local-mode client (its headers, its body encoding).
CLIENT = r'''
import json, sys
import numpy as np
import sagemaker.local.local_session as local_session
from sagemaker.serializers import CSVSerializer, JSONSerializer, NumpySerializer
from sagemaker.deserializers import CSVDeserializer, JSONDeserializer, NumpyDeserializer

local_session.get_docker_host = lambda: "127.0.0.1"  # no Docker: the server is on loopback
client = local_session.LocalSagemakerRuntimeClient()
client.serving_port = int(sys.argv[1])
data = [[1.0, 2.0], [3.0, 4.5]]
results = {}
for serializer in (JSONSerializer(), CSVSerializer(), NumpySerializer()):
    for deserializer in (JSONDeserializer(), CSVDeserializer(), NumpyDeserializer()):
        payload = serializer.serialize(np.array(data) if isinstance(serializer, NumpySerializer) else data)
        accept = deserializer.ACCEPT[0]
        response = client.invoke_endpoint(Body=payload, EndpointName="local", ContentType=serializer.CONTENT_TYPE,
                                          Accept=accept)
        status = response["Body"].status
        value = deserializer.deserialize(response["Body"], response["ContentType"])
        if isinstance(value, np.ndarray):
            value = value.tolist()
        results["%s -> %s" % (serializer.CONTENT_TYPE, accept)] = [status, value]
print("RESULT " + json.dumps(results))
'''


class SdkClientTest(unittest.TestCase):
    def test_sdk_serializers_and_deserializers(self):
        require_numpy(self)
        if not os.access(SDK_PYTHON, os.X_OK):
            self.skipTest("no SageMaker SDK venv at %s (docker/ci.sh makes it; or set SMLAUNCH_TEST_SDK_PYTHON)"
                          % SDK_PYTHON)
        if subprocess.run([SDK_PYTHON, "-c", "import numpy, sagemaker"], capture_output=True, timeout=120).returncode:
            self.skipTest("the SageMaker SDK venv at %s lacks sagemaker or numpy (an interrupted install; "
                          "docker/ci.sh makes it again)" % SDK_PYTHON)
        server = Server(self, {"inference.py": NUMPY_MODULE}, model_files={"scale.txt": "2"})
        out = subprocess.run([SDK_PYTHON, "-c", CLIENT, str(server.port)], capture_output=True, text=True,
                             timeout=120)
        self.assertEqual(out.returncode, 0, out.stderr[-3000:])
        lines = [line for line in out.stdout.splitlines() if line.startswith("RESULT ")]  # the SDK prints too
        self.assertEqual(len(lines), 1, out.stdout[-3000:])
        results = json.loads(lines[0][len("RESULT "):])
        self.assertEqual(len(results), 9)
        doubled = [[2.0, 4.0], [6.0, 9.0]]
        for name, (status, value) in results.items():
            with self.subTest(name):
                self.assertEqual(status, 200, value)
                if name.endswith("text/csv"):
                    self.assertEqual([[float(x) for x in row] for row in value], doubled)
                else:
                    self.assertEqual(value, doubled)


if __name__ == "__main__":
    unittest.main()
