from services.common.runtime import run
from services.inference.server import build_server
from services.inference.settings import InferenceSettings

if __name__ == "__main__":
    run(build_server, InferenceSettings(), "inference")
