"""The one module that relies on uvicorn's private H11Protocol refuses a uvicorn it was not written for."""

import pytest
import uvicorn

from maskrcnn_body.errors import UserError
from maskrcnn_body.serving import http_protocol
from maskrcnn_body.serving.http_config import ServerConfig


def test_installed_uvicorn_is_supported():
    http_protocol.check_uvicorn(uvicorn.__version__)


@pytest.mark.parametrize("version", ["0.29.0", "1.0.0", "2.3"])
def test_other_uvicorn_versions_fail_with_a_clear_message(version):
    with pytest.raises(UserError) as e:
        http_protocol.check_uvicorn(version)
    msg = str(e.value)
    assert f"uvicorn {version} is not supported" in msg and "H11Protocol" in msg and "pip install" in msg


def test_protocol_class_carries_the_limits():
    cfg = ServerConfig(read_timeout_s=3.0, write_timeout_s=7.0)
    stats: dict = {}
    cls = http_protocol.protocol_class(cfg, stats)
    assert issubclass(cls, http_protocol.DeadlineProtocol)
    assert (cls.head_timeout_s, cls.write_timeout_s, cls.stats) == (3.0, 7.0, stats)
