from services.common.runtime import run
from services.orchestrator.server import build_server
from services.orchestrator.settings import OrchestratorSettings

if __name__ == "__main__":
    run(build_server, OrchestratorSettings(), "orchestrator")
