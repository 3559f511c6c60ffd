"""Where a webhook may be sent: no server-side request forgery (OWASP API7).

A target URL must be https (http only with ENVIRONMENT=development), name a host by a DNS name or a plain IP
address, and carry no credentials. Its addresses must be globally routable: loopback, private (RFC 1918, ULA),
link-local (the cloud metadata service 169.254.169.254 among them), unspecified, multicast, reserved and every other
non-global range are refused, IPv4 embedded in IPv6 (mapped, NAT64, 6to4, Teredo) included. The check runs when a
subscription is registered and again at every delivery against the addresses the name resolves to *then*, and
the connection goes to the very address that was checked (`PinnedTransport`): a DNS answer that changes between the
check and the connection (DNS rebinding) cannot move it. Redirects are never followed (the client does not follow
them, and a 3xx counts as a failed delivery). `WEBHOOK_ALLOW_PRIVATE_TARGETS=true` lifts the address rule, for
development and tests.

Addresses are classified with the standard library's `ipaddress`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable, Sequence

import httpx

from api.settings import Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# host, port → the addresses the host name resolves to. Injected by tests; the system resolver otherwise.
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]

RESOLVE_TIMEOUT_SECONDS = 5.0
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_DEFAULT_PORTS = {"https": 443, "http": 80}


class TargetRefused(Exception):
    """The URL or one of its addresses may not be a webhook target. The message says why, in words for an admin."""

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message)
        self.code = code


class InvalidTarget(TargetRefused):
    def __init__(self, message: str) -> None:
        super().__init__(message, code="validation_error")


async def system_resolver(host: str, port: int) -> list[str]:
    """The addresses of `host` as the operating system resolves them (getaddrinfo, off the event loop)."""
    async with asyncio.timeout(RESOLVE_TIMEOUT_SECONDS):
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def refusal(address: IPAddress) -> str | None:
    """Why `address` may not be a webhook target (e.g. "loopback"), or None when it is globally routable."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour or (address.teredo[1] if address.teredo else None)
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return refusal(embedded)
    if address.is_unspecified:
        return "unspecified"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local (cloud metadata)" if str(address) == "169.254.169.254" else "link-local"
    if address.is_multicast:
        return "multicast"
    if address.is_private:
        return "private"
    if address.is_reserved:
        return "reserved"
    if not address.is_global:
        return "not globally routable"
    return None


def _address(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def parse(url: str, settings: Settings) -> httpx.URL:
    """The URL, or InvalidTarget / TargetRefused saying what is wrong with it (before any address is resolved)."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError):
        raise InvalidTarget("must be an absolute https URL") from None
    if parsed.scheme not in _DEFAULT_PORTS or not parsed.is_absolute_url or not parsed.host:
        raise InvalidTarget("must be an absolute https URL")
    if parsed.userinfo:
        raise InvalidTarget("must not carry credentials: receivers authenticate deliveries by their signature")
    if parsed.fragment:
        raise InvalidTarget("must not have a fragment")
    if parsed.port is not None and not 1 <= parsed.port <= 65535:
        raise InvalidTarget("port must be from 1 to 65535")
    host = parsed.raw_host.decode("ascii")
    if _address(host) is None:
        labels = host.split(".")
        if not all(_LABEL.match(label) for label in labels) or len(host) > 253:
            raise InvalidTarget("host must be a DNS name or an IP address")
        if labels[-1].isdigit() or labels[-1].startswith("0x"):
            # 2130706433, 127.1, 0x7f.1: shorthand IPv4 that resolvers read as addresses.
            raise InvalidTarget("an IP address must be written in full (dotted quad, or IPv6 in brackets)")
    if parsed.scheme == "http" and settings.environment != "development":
        raise TargetRefused("must use https (http is allowed only with ENVIRONMENT=development)",
                            code="webhook_url_insecure")
    return parsed


def port_of(url: httpx.URL) -> int:
    return url.port or _DEFAULT_PORTS[url.scheme]


async def checked_addresses(url: httpx.URL, *, allow_private: bool, resolver: Resolver) -> list[IPAddress]:
    """The addresses to connect to for `url`, every one of them allowed; TargetRefused if any is not (a name
    resolving to one public and one private address is refused: which one a client picks is not ours to know)."""
    host = url.raw_host.decode("ascii")
    literal = _address(host)
    if literal is None and (host == "localhost" or host.endswith(".localhost")):
        literal = ipaddress.IPv4Address("127.0.0.1")  # RFC 6761: never sent to DNS, always loopback
    if literal is not None:
        addresses = [literal]
    else:
        try:
            addresses = [ipaddress.ip_address(a.split("%", 1)[0]) for a in await resolver(host, port_of(url))]
        except (OSError, TimeoutError, ValueError) as error:
            raise TargetRefused(f"{host} could not be resolved ({type(error).__name__})",
                                code="webhook_target_unresolvable") from None
        if not addresses:
            raise TargetRefused(f"{host} resolves to no address", code="webhook_target_unresolvable")
    if not allow_private:
        for address in addresses:
            reason = refusal(address)
            if reason is not None:
                shown = "" if literal is not None else f"{host} resolves to "
                raise TargetRefused(f"{shown}{address}, a {reason} address, is not allowed as a webhook target",
                                    code="webhook_target_forbidden")
    return addresses


async def check_registration(url: str, settings: Settings, resolver: Resolver) -> str:
    """Registration's check of a target URL; the URL as it will be stored. A host name that cannot be resolved now
    is accepted (DNS may be down for a moment, or the receiver not deployed yet): every delivery checks again."""
    parsed = parse(url, settings)
    try:
        await checked_addresses(parsed, allow_private=settings.webhook_allow_private_targets, resolver=resolver)
    except TargetRefused as refused:
        if refused.code != "webhook_target_unresolvable":
            raise
    return str(parsed)


class PinnedTransport(httpx.AsyncBaseTransport):
    """Sends each request to an address checked just before, never to one a second DNS answer could give.

    The URL is checked as at registration (https outside development, a plain host), then its addresses. The
    request's URL is rewritten to the checked IP address; the `Host` header keeps the name (httpx set it when
    the request was built), and for https the TLS server name (SNI) and the certificate check use the name too
    (httpcore's `sni_hostname` extension), so the receiver sees an ordinary request to its name. When several
    addresses are allowed, each is tried in turn until one accepts the connection.
    """

    def __init__(self, settings: Settings, *, resolver: Resolver,
                 network: httpx.AsyncBaseTransport | None = None) -> None:
        self._settings = settings
        self._resolver = resolver
        self._network = network or httpx.AsyncHTTPTransport(retries=0)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = parse(str(request.url), self._settings)  # the rules of registration hold at every delivery
        name = url.raw_host.decode("ascii")
        addresses = await checked_addresses(url, allow_private=self._settings.webhook_allow_private_targets,
                                            resolver=self._resolver)
        if url.scheme == "https" and _address(name) is None:
            request.extensions = {**request.extensions, "sni_hostname": name}
        for index, address in enumerate(addresses):
            request.url = url.copy_with(host=str(address))
            try:
                return await self._network.handle_async_request(request)
            except httpx.ConnectError:
                if index == len(addresses) - 1:
                    raise
        raise AssertionError("unreachable: checked_addresses answers at least one address")

    async def aclose(self) -> None:
        await self._network.aclose()
