"""costmesh where an application's framework already is: LangGraph (`costmesh.integrations.langgraph`) and
LlamaIndex (`costmesh.integrations.llamaindex`). Each module needs its framework (`pip install
costmesh[langgraph]` / `costmesh[llamaindex]`); importing this package needs neither."""
