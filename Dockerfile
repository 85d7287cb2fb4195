# mcp-server-comfyui, serving MCP over streamable HTTP on port 8765 (see docs/deployment.md).
#
#   docker build -t mcp-server-comfyui .
#   docker run -p 8765:8765 -e COMFY_MCP_TOKEN=... -e COMFYUI_URL=http://comfyui:8188 mcp-server-comfyui
#
# It listens on 0.0.0.0, so it refuses to start without COMFY_MCP_TOKEN (or COMFY_MCP_TOKEN_FILE)
# unless COMFY_MCP_ALLOW_UNAUTHENTICATED=true says something in front of it authenticates.

# Stage 1: build the wheel from the source (the bundled workflows go inside it).
FROM python:3.12-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY comfy_mcp ./comfy_mcp
COPY workflows ./workflows
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

# Stage 2: the runtime image: the installed package only, run by an unprivileged user.
FROM python:3.12-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl \
    && rm -rf /wheels \
    && groupadd --system --gid 10001 comfymcp \
    && useradd --system --uid 10001 --gid 10001 --create-home --shell /usr/sbin/nologin comfymcp
USER 10001:10001
WORKDIR /home/comfymcp

ENV COMFY_MCP_TRANSPORT=http \
    COMFY_MCP_HOST=0.0.0.0 \
    COMFY_MCP_PORT=8765 \
    COMFY_MCP_LOG_LEVEL=INFO \
    COMFYUI_URL=http://comfyui:8188
EXPOSE 8765

# /healthz answers 200 while the server runs (no token needed); urllib, since there is no curl.
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('COMFY_MCP_PORT', '8765') + '/healthz', timeout=4)"]

ENTRYPOINT ["mcp-server-comfyui"]
CMD ["serve"]
