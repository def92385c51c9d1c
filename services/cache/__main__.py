from services.cache.server import build_server
from services.cache.settings import CacheSettings
from services.common.runtime import run

if __name__ == "__main__":
    run(build_server, CacheSettings(), "cache")
