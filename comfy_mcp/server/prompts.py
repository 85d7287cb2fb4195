"""MCP prompts: short recipes that walk an agent through common tasks with our real tools."""

from __future__ import annotations

from typing import Annotated

from mcp.server.mcpserver import MCPServer
from pydantic import Field

from comfy_mcp.server.state import ServerState


def register_prompts(server: MCPServer, state: ServerState) -> None:
    def templates_line() -> str:
        names = state.catalog.names()
        return ", ".join(names) if names else "(none loaded)"

    @server.prompt(title="Generate an image")
    def generate_image(
        description: Annotated[str, Field(description="What the image should show")],
        size: Annotated[str, Field(description="For example 512x512 or 1024x768")] = "",
    ) -> str:
        """Make an image from a description with the txt2img templates."""
        size_hint = f" at {size}" if size else ""
        return (
            f"Create an image of: {description}{size_hint}.\n"
            "1. Call list_models (folder 'checkpoints') and pick a checkpoint: an 'xl' model for "
            "1024-pixel images, otherwise an SD 1.5 one.\n"
            f"2. Run the matching template (available: {templates_line()}): txt2img or "
            "txt2img_sdxl, with enqueue_workflow (workflow=<name>, params={prompt, checkpoint, "
            "width, height, …}) or the run_<name> tool. Write a rich positive prompt and a short "
            "negative prompt. Leave the seed out to get a random one; it is reported back.\n"
            "3. If the result says queued or running, call wait_for_job with the prompt_id "
            "(repeat while it is still running).\n"
            "4. Show the preview and give the full-size resource link. On an error, read it: it "
            "names the parameter and the allowed values; fix and retry once."
        )

    @server.prompt(title="Vary or upscale a result")
    def vary_or_upscale(
        prompt_id: Annotated[str, Field(description="The prompt_id of the earlier result")],
        goal: Annotated[
            str, Field(description="'vary' (same idea, new seed) or 'upscale'")
        ] = "vary",
    ) -> str:
        """Build on an earlier result: a variation or a larger version."""
        return (
            f"Work from the earlier ComfyUI result {prompt_id} (goal: {goal}).\n"
            "1. Call get_status to read its workflow and params (seed included).\n"
            "2. For a variation: run the same template with the same params but no seed "
            "(a new random one), or img2img with the output as 'image' and denoise 0.4–0.6.\n"
            "3. To upscale: call list_models (folder 'upscale_models'); run the 'upscale' template "
            "with the output file as 'image' (an input file name, or upload it first with the "
            "upload_image tool if it is not in ComfyUI's input folder); or hires_fix to "
            "regenerate at a higher resolution.\n"
            "4. Compare with the original and report both prompt_ids."
        )

    @server.prompt(title="Turn a workflow export into a template")
    def make_template(
        name: Annotated[str, Field(description="Name for the new template (letters, digits, _)")],
    ) -> str:
        """Guide for turning a ComfyUI export into a reusable template file."""
        folders = ", ".join(str(p) for p in state.settings.workflows_dirs) or (
            "(none: set COMFY_MCP_WORKFLOWS_DIR)"
        )
        return (
            f"Help me make the ComfyUI workflow template '{name}'.\n"
            "1. Ask for the workflow JSON exported from ComfyUI (Workflow → Export (API); a normal "
            "Save (UI format) also works with enqueue_workflow).\n"
            "2. Test it once with enqueue_workflow (workflow=<the JSON>) and fix what the error "
            "names.\n"
            f"3. Save it as {name}.json in a template folder ({folders}). A plain export gets "
            "parameters inferred (prompt, seed, steps, size, checkpoint…); for precise control "
            'wrap it as {"description": …, "parameters": {name: {"type", "bind": '
            '"node.input", "default", "description"}}, "graph": <export>}.\n'
            "4. Call list_workflows to check the parameters, then run it by name."
        )
