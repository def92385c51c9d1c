from services.batch.server import build_server
from services.batch.settings import BatchSettings
from services.common.runtime import run

if __name__ == "__main__":
    run(build_server, BatchSettings(), "batch")
