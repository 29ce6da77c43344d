# Expected: socket.gaierror: no network and no resolv.conf inside the sandbox.
import socket

socket.getaddrinfo("pypi.org", 443)
print("ATTACK SUCCEEDED: DNS works")
