"""POST /prompt validation, a port of ComfyUI 0.3.64's ``validate_prompt``/``validate_inputs``.

Node definitions come from the recorded /object_info. The error dicts, their texts and the
(quirky) way ``node_errors``/``dependent_outputs`` are filled follow the real server, so the
recorded post_prompt_400_*.json bodies are reproduced exactly.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from . import recorded

# Node classes whose VALIDATE_INPUTS we emulate: class -> the input it checks (a file in input/).
_FILE_VALIDATED = {"LoadImage": "image", "LoadImageMask": "image"}


class _RecordedError(Exception):
    """An exception whose type name and traceback text are taken from a recording."""

    def __init__(self, type_name: str, message: str, tb: list[str]) -> None:
        super().__init__(message)
        self.type_name = type_name
        self.tb = tb


@dataclass
class ValidationResult:
    ok: bool
    error: dict[str, Any] | None
    good_outputs: list[str]
    node_errors: dict[str, Any]


def _full_type_name(ex: BaseException) -> str:
    if isinstance(ex, _RecordedError):
        return ex.type_name
    module = type(ex).__module__
    qualname = type(ex).__qualname__
    return qualname if module in (None, "builtins") else f"{module}.{qualname}"


def _tb_lines(ex: BaseException) -> list[str]:
    if isinstance(ex, _RecordedError):
        return list(ex.tb)
    return traceback.format_tb(ex.__traceback__)


def validate_node_input(received_type: Any, input_type: Any) -> bool:
    if received_type == input_type:
        return True
    if not isinstance(received_type, str) or not isinstance(input_type, str):
        return False
    received = {t.strip() for t in received_type.split(",")}
    accepted = {t.strip() for t in input_type.split(",")}
    if "*" in received or "*" in accepted:
        return True
    return received == accepted or len(received & accepted) > 0


class PromptValidator:
    def __init__(
        self, object_info: Mapping[str, Any], input_file_exists: Callable[[str], bool]
    ) -> None:
        self.object_info = object_info
        self.input_file_exists = input_file_exists

    # ------------------------------------------------------------------------------------
    def validate_prompt(
        self, prompt: Any, partial_execution_targets: list[str] | None = None
    ) -> ValidationResult:
        """Raises (→ HTTP 500) where the real server raises, e.g. for a non-dict node."""
        outputs: list[str] = []
        for x in prompt:
            if "class_type" not in prompt[x]:
                return ValidationResult(
                    False,
                    _error(
                        "invalid_prompt",
                        "Cannot execute because a node is missing the class_type property.",
                        f"Node ID '#{x}'",
                    ),
                    [],
                    {},
                )
            class_type = prompt[x]["class_type"]
            class_def = self.object_info.get(class_type)
            if class_def is None:
                return ValidationResult(
                    False,
                    _error(
                        "invalid_prompt",
                        f"Cannot execute because node {class_type} does not exist.",
                        f"Node ID '#{x}'",
                    ),
                    [],
                    {},
                )
            wanted = partial_execution_targets is None or x in partial_execution_targets
            if class_def.get("output_node") is True and wanted and x not in outputs:
                outputs.append(x)

        if not outputs:
            return ValidationResult(
                False, _error("prompt_no_outputs", "Prompt has no outputs", ""), [], {}
            )

        good_outputs: list[str] = []
        errors: list[tuple[str, list[dict[str, Any]]]] = []
        node_errors: dict[str, Any] = {}
        validated: dict[str, tuple[bool, list[dict[str, Any]], str]] = {}
        for o in outputs:
            try:
                valid, reasons, _ = self.validate_inputs(prompt, o, validated, [])
            except Exception as ex:
                valid = False
                reasons = [
                    {
                        "type": "exception_during_validation",
                        "message": "Exception when validating node",
                        "details": str(ex),
                        "extra_info": {
                            "exception_type": _full_type_name(ex),
                            "traceback": _tb_lines(ex),
                        },
                    }
                ]
                validated[o] = (False, reasons, o)
            if valid is True:
                good_outputs.append(o)
                continue
            errors.append((o, reasons))
            # ComfyUI walks *every* validated node here, so an invalid node also lists
            # outputs that fail for other reasons. Kept as is.
            for node_id, result in validated.items():
                if result[0] is not True and len(result[1]) > 0:
                    if node_id not in node_errors:
                        node_errors[node_id] = {
                            "errors": result[1],
                            "dependent_outputs": [],
                            "class_type": prompt[node_id]["class_type"],
                        }
                    node_errors[node_id]["dependent_outputs"].append(o)

        if not good_outputs:
            lines = [f"{e['message']}: {e['details']}" for _, reasons in errors for e in reasons]
            return ValidationResult(
                False,
                _error(
                    "prompt_outputs_failed_validation",
                    "Prompt outputs failed validation",
                    "\n".join(lines),
                ),
                [],
                node_errors,
            )
        return ValidationResult(True, None, good_outputs, node_errors)

    # ------------------------------------------------------------------------------------
    def validate_inputs(
        self,
        prompt: dict[str, Any],
        unique_id: str,
        validated: dict[str, tuple[bool, list[dict[str, Any]], str]],
        visiting: list[str],
    ) -> tuple[bool, list[dict[str, Any]], str]:
        if unique_id in validated:
            return validated[unique_id]
        if unique_id in visiting:
            return self._cycle(prompt, unique_id, validated, visiting)

        inputs = prompt[unique_id]["inputs"]
        class_type = prompt[unique_id]["class_type"]
        class_inputs = self.object_info[class_type]["input"]
        custom_input = _FILE_VALIDATED.get(class_type)
        errors: list[dict[str, Any]] = []
        valid = True

        categories = [("required", class_inputs.get("required", {}))]
        categories.append(("optional", class_inputs.get("optional", {})))
        for category, specs in categories:
            for x, spec in specs.items():
                input_type = spec[0]
                extra_info = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
                if x not in inputs:
                    if category == "required":
                        errors.append(
                            _item("required_input_missing", "Required input is missing", x, x)
                        )
                    continue
                val = inputs[x]
                info = [input_type, extra_info]
                if isinstance(val, list):
                    if len(val) != 2:
                        err = _item(
                            "bad_linked_input",
                            "Bad linked input, must be a length-2 list of [node_id, slot_index]",
                            x,
                            x,
                        )
                        err["extra_info"].update(input_config=info, received_value=val)
                        errors.append(err)
                        continue
                    o_id = val[0]
                    received_type = self._return_type(prompt, o_id, val[1])
                    if not validate_node_input(received_type, input_type):
                        err = _item(
                            "return_type_mismatch",
                            "Return type mismatch between linked nodes",
                            f"{x}, received_type({received_type}) "
                            f"mismatch input_type({input_type})",
                            x,
                        )
                        err["extra_info"].update(
                            input_config=info, received_type=received_type, linked_node=val
                        )
                        errors.append(err)
                        continue
                    try:
                        visiting.append(unique_id)
                        try:
                            r = self.validate_inputs(prompt, o_id, validated, visiting)
                        finally:
                            visiting.pop()
                        if r[0] is False:
                            valid = False
                            continue
                    except Exception as ex:
                        valid = False
                        reason = _item(
                            "exception_during_inner_validation",
                            "Exception when validating inner node",
                            str(ex),
                            x,
                        )
                        reason["extra_info"].update(
                            input_config=info,
                            exception_message=str(ex),
                            exception_type=_full_type_name(ex),
                            traceback=_tb_lines(ex),
                            linked_node=val,
                        )
                        validated[o_id] = (False, [reason], o_id)
                        continue
                else:
                    error = self._check_value(
                        inputs, x, val, input_type, extra_info, info, x == custom_input
                    )
                    if error is not None:
                        errors.append(error)

        if custom_input is not None and custom_input in inputs:
            value = inputs[custom_input]
            if not isinstance(value, list) and not self.input_file_exists(str(value)):
                errors.append(
                    _item(
                        "custom_validation_failed",
                        "Custom validation failed for node",
                        f"{custom_input} - Invalid image file: {value}",
                        custom_input,
                    )
                )

        ok = not errors and valid is True
        result = (True, [], unique_id) if ok else (False, errors, unique_id)
        validated[unique_id] = result
        return result

    # ------------------------------------------------------------------------------------
    def _return_type(self, prompt: dict[str, Any], o_id: Any, index: Any) -> Any:
        try:
            o_class_type = prompt[o_id]["class_type"]
        except KeyError as ex:
            raise _RecordedError("KeyError", str(ex), recorded.bad_link_traceback()) from ex
        return tuple(self.object_info[o_class_type]["output"])[index]

    def _check_value(
        self,
        inputs: dict[str, Any],
        x: str,
        val: Any,
        input_type: Any,
        extra_info: dict[str, Any],
        info: list[Any],
        custom_validated: bool,
    ) -> dict[str, Any] | None:
        if isinstance(val, dict) and "__value__" in val:
            val = val["__value__"]
            inputs[x] = val
        try:
            if input_type == "INT":
                val = int(val)
            elif input_type == "FLOAT":
                val = float(val)
            elif input_type == "STRING":
                val = str(val)
            elif input_type == "BOOLEAN":
                val = bool(val)
            inputs[x] = val
        except Exception as ex:
            err = _item(
                "invalid_input_type",
                f"Failed to convert an input value to a {input_type} value",
                f"{x}, {val}, {ex}",
                x,
            )
            err["extra_info"].update(
                input_config=info, received_value=val, exception_message=str(ex)
            )
            return err
        if custom_validated:  # inputs checked by VALIDATE_INPUTS skip the range/list checks
            return None
        if "min" in extra_info and val < extra_info["min"]:
            message = f"Value {val} smaller than min of {extra_info['min']}"
            err = _item("value_smaller_than_min", message, x, x)
            err["extra_info"].update(input_config=info, received_value=val)
            return err
        if "max" in extra_info and val > extra_info["max"]:
            message = f"Value {val} bigger than max of {extra_info['max']}"
            err = _item("value_bigger_than_max", message, x, x)
            err["extra_info"].update(input_config=info, received_value=val)
            return err
        if isinstance(input_type, list) or input_type == "COMBO":
            options = extra_info.get("options", []) if input_type == "COMBO" else input_type
            if val not in options:
                input_config: Any = info
                if len(options) > 20:
                    list_info = f"(list of length {len(options)})"
                    input_config = None
                else:
                    list_info = str(options)
                details = f"{x}: '{val}' not in {list_info}"
                err = _item("value_not_in_list", "Value not in list", details, x)
                err["extra_info"].update(input_config=input_config, received_value=val)
                return err
        return None

    def _cycle(
        self,
        prompt: dict[str, Any],
        unique_id: str,
        validated: dict[str, tuple[bool, list[dict[str, Any]], str]],
        visiting: list[str],
    ) -> tuple[bool, list[dict[str, Any]], str]:
        path = [*visiting[visiting.index(unique_id) :], unique_id]
        cycle_nodes = list(dict.fromkeys(path))
        text = " -> ".join(f"{n} ({prompt[n]['class_type']})" for n in path)
        for node_id in cycle_nodes:
            reason = {
                "type": "dependency_cycle",
                "message": "Dependency cycle detected",
                "details": text,
                "extra_info": {"node_id": node_id, "cycle_nodes": cycle_nodes},
            }
            validated[node_id] = (False, [reason], node_id)
        return validated[unique_id]


def _error(kind: str, message: str, details: str) -> dict[str, Any]:
    return {"type": kind, "message": message, "details": details, "extra_info": {}}


def _item(kind: str, message: str, details: str, input_name: str) -> dict[str, Any]:
    return {
        "type": kind,
        "message": message,
        "details": details,
        "extra_info": {"input_name": input_name},
    }
