"""A CreateCertificate client not written in TypeScript: Debian's python3-grpcio with stubs
generated from Ambit's own proto/istio/security/ca.proto. Prints one JSON line with the result.

usage: ca_client.py STUB_DIR TARGET ROOTS KEY CHAIN CSR IDENTITY VALIDITY_SECONDS
"""
import json
import sys

sys.path.insert(0, sys.argv[1])

import grpc  # noqa: E402
from google.protobuf import struct_pb2  # noqa: E402
from istio.security import ca_pb2, ca_pb2_grpc  # noqa: E402


def read(path):
    with open(path, "rb") as f:
        return f.read()


def main():
    _, _, target, roots, key, chain, csr, identity, validity = sys.argv
    creds = grpc.ssl_channel_credentials(
        root_certificates=read(roots),
        private_key=read(key) if key != "-" else None,
        certificate_chain=read(chain) if chain != "-" else None,
    )
    metadata = struct_pb2.Struct()
    if identity != "-":
        metadata.update({"ImpersonatedIdentity": identity})
    request = ca_pb2.IstioCertificateRequest(
        csr=read(csr).decode(), validity_duration=int(validity), metadata=metadata
    )
    with grpc.secure_channel(target, creds) as channel:
        stub = ca_pb2_grpc.IstioCertificateServiceStub(channel)
        try:
            response = stub.CreateCertificate(request, timeout=15)
            print(json.dumps({"ok": True, "certChain": list(response.cert_chain)}))
        except grpc.RpcError as err:
            code = dict(err.trailing_metadata() or ()).get("ambit-error-code")
            print(json.dumps({"ok": False, "status": err.code().name, "code": code, "details": err.details()}))


if __name__ == "__main__":
    main()
