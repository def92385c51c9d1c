from services.common.runtime import run
from services.compressor.server import build_server
from services.compressor.settings import CompressorSettings

if __name__ == "__main__":
    run(build_server, CompressorSettings(), "compressor")
