from services.common.runtime import run
from services.summarizer.server import build_server
from services.summarizer.settings import SummarizerSettings

if __name__ == "__main__":
    run(build_server, SummarizerSettings(), "summarizer")
