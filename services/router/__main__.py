from services.common.runtime import run
from services.router.server import build_server
from services.router.settings import RouterSettings

if __name__ == "__main__":
    run(build_server, RouterSettings(), "router")
