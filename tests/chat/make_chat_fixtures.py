#!/usr/bin/env python3
"""Writes tests/fixtures/chat/<template>/{tokenizer_config.json,cases.jsonl}: the chat templates of
the MoE models moe-runtime targets and what transformers renders for a set of conversations.

Rendering goes through transformers.utils.chat_template_utils.render_jinja_template, the function
PreTrainedTokenizerBase.apply_chat_template(tokenize=False) calls (jinja2 ImmutableSandboxedEnvironment,
trim_blocks, lstrip_blocks, loopcontrols, tojson ensure_ascii=False, raise_exception, strftime_now).
Its context is messages, tools (None unless a case passes tools), documents (None),
add_generation_prompt, bos_token, eos_token and the case's extra kwargs; the C++ test builds the same.
Where each template string comes from: tests/fixtures/chat/README.md.

Usage: python3 tests/chat/make_chat_fixtures.py   (needs transformers and jinja2; no network)
"""
import json
import os

from transformers.utils.chat_template_utils import render_jinja_template

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "chat")

# --- template strings (as the JSON "chat_template" values decode) ----------------------------

MIXTRAL = (
    "{%- if messages[0]['role'] == 'system' %}\n"
    "    {%- set system_message = messages[0]['content'] %}\n"
    "    {%- set loop_messages = messages[1:] %}\n"
    "{%- else %}\n"
    "    {%- set loop_messages = messages %}\n"
    "{%- endif %}\n"
    "\n"
    "{{- bos_token }}\n"
    "{%- for message in loop_messages %}\n"
    "    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}\n"
    "        {{- raise_exception('After the optional system message, conversation roles must alternate user/assistant/user/assistant/...') }}\n"
    "    {%- endif %}\n"
    "    {%- if message['role'] == 'user' %}\n"
    "        {%- if loop.first and system_message is defined %}\n"
    "            {{- ' [INST] ' + system_message + '\\n\\n' + message['content'] + ' [/INST]' }}\n"
    "        {%- else %}\n"
    "            {{- ' [INST] ' + message['content'] + ' [/INST]' }}\n"
    "        {%- endif %}\n"
    "    {%- elif message['role'] == 'assistant' %}\n"
    "        {{- ' ' + message['content'] + eos_token}}\n"
    "    {%- else %}\n"
    "        {{- raise_exception('Only user and assistant roles are supported, with the exception of an initial optional system message!') }}\n"
    "    {%- endif %}\n"
    "{%- endfor %}\n"
)

MIXTRAL_ORIGINAL = (
    "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}"
    "{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}"
)

QWEN15_MOE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are a helpful assistant<|im_end|>\\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

QWEN3 = r"""{%- if tools %}
    {{- '<|im_start|>system\n' }}
    {%- if messages[0].role == 'system' %}
        {{- messages[0].content + '\n\n' }}
    {%- endif %}
    {{- "# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>" }}
    {%- for tool in tools %}
        {{- "\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n" }}
{%- else %}
    {%- if messages[0].role == 'system' %}
        {{- '<|im_start|>system\n' + messages[0].content + '<|im_end|>\n' }}
    {%- endif %}
{%- endif %}
{%- set ns = namespace(multi_step_tool=true, last_query_index=messages|length - 1) %}
{%- for message in messages[::-1] %}
    {%- set index = (messages|length - 1) - loop.index0 %}
    {%- if ns.multi_step_tool and message.role == "user" and not(message.content.startswith('<tool_response>') and message.content.endswith('</tool_response>')) %}
        {%- set ns.multi_step_tool = false %}
        {%- set ns.last_query_index = index %}
    {%- endif %}
{%- endfor %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) %}
        {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>' + '\n' }}
    {%- elif message.role == "assistant" %}
        {%- set content = message.content %}
        {%- set reasoning_content = '' %}
        {%- if message.reasoning_content is defined and message.reasoning_content is not none %}
            {%- set reasoning_content = message.reasoning_content %}
        {%- else %}
            {%- if '</think>' in message.content %}
                {%- set content = message.content.split('</think>')[-1].lstrip('\n') %}
                {%- set reasoning_content = message.content.split('</think>')[0].rstrip('\n').split('<think>')[-1].lstrip('\n') %}
            {%- endif %}
        {%- endif %}
        {%- if loop.index0 > ns.last_query_index %}
            {%- if loop.last or (not loop.last and reasoning_content) %}
                {{- '<|im_start|>' + message.role + '\n<think>\n' + reasoning_content.strip('\n') + '\n</think>\n\n' + content.lstrip('\n') }}
            {%- else %}
                {{- '<|im_start|>' + message.role + '\n' + content }}
            {%- endif %}
        {%- else %}
            {{- '<|im_start|>' + message.role + '\n' + content }}
        {%- endif %}
        {%- if message.tool_calls %}
            {%- for tool_call in message.tool_calls %}
                {%- if (loop.first and content) or (not loop.first) %}
                    {{- '\n' }}
                {%- endif %}
                {%- if tool_call.function %}
                    {%- set tool_call = tool_call.function %}
                {%- endif %}
                {{- '<tool_call>\n{"name": "' }}
                {{- tool_call.name }}
                {{- '", "arguments": ' }}
                {%- if tool_call.arguments is string %}
                    {{- tool_call.arguments }}
                {%- else %}
                    {{- tool_call.arguments | tojson }}
                {%- endif %}
                {{- '}\n</tool_call>' }}
            {%- endfor %}
        {%- endif %}
        {{- '<|im_end|>\n' }}
    {%- elif message.role == "tool" %}
        {%- if loop.first or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\n<tool_response>\n' }}
        {{- message.content }}
        {{- '\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
    {%- if enable_thinking is defined and enable_thinking is false %}
        {{- '<think>\n\n</think>\n\n' }}
    {%- endif %}
{%- endif %}"""

OLMOE = (
    "{{ bos_token }}{% for message in messages %}\n"
    "{% if message['role'] == 'system' %}\n{{ '<|system|>\\n' + message['content'] }}\n"
    "{% elif message['role'] == 'user' %}\n{{ '<|user|>\\n' + message['content'] }}\n"
    "{% elif message['role'] == 'assistant' %}\n{{ '<|assistant|>\\n'  + message['content'] + eos_token }}\n"
    "{% endif %}\n{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n{% endfor %}"
)

DEEPSEEK_V2_LITE = (
    "{% if not add_generation_prompt is defined %}{% set add_generation_prompt = false %}{% endif %}"
    "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}"
    "{{ 'User: ' + message['content'] + '\\n\\n' }}{% elif message['role'] == 'assistant' %}"
    "{{ 'Assistant: ' + message['content'] + eos_token }}{% elif message['role'] == 'system' %}"
    "{{ message['content'] + '\\n\\n' }}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)

DEEPSEEK_V3 = (
    "{% if not add_generation_prompt is defined %}{% set add_generation_prompt = false %}{% endif %}"
    "{% set ns = namespace(is_first=false, is_tool=false, is_output_first=true, system_prompt='', is_first_sp=true) %}"
    "{%- for message in messages %}{%- if message['role'] == 'system' %}{%- if ns.is_first_sp %}"
    "{% set ns.system_prompt = ns.system_prompt + message['content'] %}{% set ns.is_first_sp = false %}"
    "{%- else %}{% set ns.system_prompt = ns.system_prompt + '\\n\\n' + message['content'] %}{%- endif %}"
    "{%- endif %}{%- endfor %}{{bos_token}}{{ns.system_prompt}}{%- for message in messages %}"
    "{%- if message['role'] == 'user' %}{%- set ns.is_tool = false -%}{{'<｜User｜>' + message['content']}}{%- endif %}"
    "{%- if message['role'] == 'assistant' and message['content'] is none %}{%- set ns.is_tool = false -%}"
    "{%- for tool in message['tool_calls']%}{%- if not ns.is_first %}"
    "{{'<｜Assistant｜><｜tool▁calls▁begin｜><｜tool▁call▁begin｜>' + tool['type'] + '<｜tool▁sep｜>' + tool['function']['name'] + '\\n' + '```json' + '\\n' + tool['function']['arguments'] + '\\n' + '```' + '<｜tool▁call▁end｜>'}}"
    "{%- set ns.is_first = true -%}{%- else %}"
    "{{'\\n' + '<｜tool▁call▁begin｜>' + tool['type'] + '<｜tool▁sep｜>' + tool['function']['name'] + '\\n' + '```json' + '\\n' + tool['function']['arguments'] + '\\n' + '```' + '<｜tool▁call▁end｜>'}}"
    "{{'<｜tool▁calls▁end｜><｜end▁of▁sentence｜>'}}{%- endif %}{%- endfor %}{%- endif %}"
    "{%- if message['role'] == 'assistant' and message['content'] is not none %}{%- if ns.is_tool %}"
    "{{'<｜tool▁outputs▁end｜>' + message['content'] + '<｜end▁of▁sentence｜>'}}{%- set ns.is_tool = false -%}"
    "{%- else %}{{'<｜Assistant｜>' + message['content'] + '<｜end▁of▁sentence｜>'}}{%- endif %}{%- endif %}"
    "{%- if message['role'] == 'tool' %}{%- set ns.is_tool = true -%}{%- if ns.is_output_first %}"
    "{{'<｜tool▁outputs▁begin｜><｜tool▁output▁begin｜>' + message['content'] + '<｜tool▁output▁end｜>'}}"
    "{%- set ns.is_output_first = false %}{%- else %}"
    "{{'\\n<｜tool▁output▁begin｜>' + message['content'] + '<｜tool▁output▁end｜>'}}{%- endif %}{%- endif %}"
    "{%- endfor -%}{% if ns.is_tool %}{{'<｜tool▁outputs▁end｜>'}}{% endif %}"
    "{% if add_generation_prompt and not ns.is_tool %}{{'<｜Assistant｜>'}}{% endif %}"
)

DS_BOS, DS_EOS = "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>"

TEMPLATES = {
    "mixtral_8x7b_instruct_v0_1": (MIXTRAL, "<s>", "</s>"),
    "mixtral_8x7b_instruct_v0_1_original": (MIXTRAL_ORIGINAL, "<s>", "</s>"),
    "qwen1_5_moe_a2_7b_chat": (QWEN15_MOE, None, "<|im_end|>"),
    "qwen3_30b_a3b": (QWEN3, None, "<|im_end|>"),
    "olmoe_1b_7b_0924_instruct": (OLMOE, "<|endoftext|>", "<|endoftext|>"),
    "deepseek_v2_lite_chat": (DEEPSEEK_V2_LITE, DS_BOS, DS_EOS),
    "deepseek_v3": (DEEPSEEK_V3, DS_BOS, DS_EOS),
}

# --- conversations --------------------------------------------------------------------------


def m(role, content, **kw):
    return {"role": role, "content": content, **kw}


SYS = m("system", "You are a terse assistant.\nAnswer in one line.")
U1 = m("user", "Hello!")
A1 = m("assistant", "Hi there. How can I help?")
U2 = m("user", 'Quote "this", {braces} {{ and }} {% tags %}, \\backslash\\ and\ttab.')
UNI = m("user", "Grüße, 世界! 🚀 — naïve café ＜｜User｜＞")
MULTILINE = m("user", "line one\n\n  line two  \nline three\n")

COMMON = [
    {"messages": [U1], "add_generation_prompt": True},
    {"messages": [U1], "add_generation_prompt": False},
    {"messages": [U1, A1, U2], "add_generation_prompt": True},
    {"messages": [U1, A1, U2, m("assistant", "Done.")], "add_generation_prompt": False},
    {"messages": [SYS, U1], "add_generation_prompt": True},
    {"messages": [SYS, U1, A1, MULTILINE], "add_generation_prompt": True},
    {"messages": [UNI], "add_generation_prompt": True},
    {"messages": [MULTILINE, m("assistant", "  spaced  \n")], "add_generation_prompt": False},
]

def sorted_keys(v):
    # moe::ChatTemplate::render takes nlohmann::json, whose objects keep keys sorted; tool schemas
    # rendered with tojson are therefore written here with sorted keys, so both sides agree.
    if isinstance(v, dict):
        return {k: sorted_keys(v[k]) for k in sorted(v)}
    if isinstance(v, list):
        return [sorted_keys(x) for x in v]
    return v


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city (°C).",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer", "default": 1}},
            "required": ["city"],
        },
    },
}
WEATHER_TOOL = sorted_keys(WEATHER_TOOL)

EXTRA_CASES = {
    "mixtral_8x7b_instruct_v0_1": [
        {"messages": [U1, U1], "add_generation_prompt": True},
        {"messages": [SYS, A1], "add_generation_prompt": True},
        {"messages": [U1, m("tool", "x")], "add_generation_prompt": False},
        {"messages": [U1, A1, SYS], "add_generation_prompt": False},
    ],
    "mixtral_8x7b_instruct_v0_1_original": [
        {"messages": [SYS, U1], "add_generation_prompt": True},  # system role raises here
        {"messages": [U1, U1], "add_generation_prompt": False},
    ],
    "qwen1_5_moe_a2_7b_chat": [
        {"messages": [m("user", "a"), m("system", "late system")], "add_generation_prompt": True},
    ],
    "qwen3_30b_a3b": [
        {"messages": [U1], "add_generation_prompt": True, "extra": {"enable_thinking": False}},
        {"messages": [U1], "add_generation_prompt": True, "extra": {"enable_thinking": True}},
        {"messages": [U1, m("assistant", "Hi!", reasoning_content="\nThe user greets me.\n")],
         "add_generation_prompt": False},
        {"messages": [U1, m("assistant", "<think>\nearlier thought\n</think>\n\nHi!"), U2,
                      m("assistant", "Sure.", reasoning_content="Reasoning about quotes.")],
         "add_generation_prompt": False},
        {"messages": [SYS, U1, m("assistant", "<think>\nhmm\n</think>\n\nHi!"), m("user", "again")],
         "add_generation_prompt": True, "extra": {"enable_thinking": False}},
        {"messages": [SYS, m("user", "Weather in Paris?"),
                      m("assistant", "", tool_calls=[{"type": "function", "function": {
                          "name": "get_weather", "arguments": {"city": "Paris", "days": 2}}}]),
                      m("tool", '{"temp": 21.5, "sky": "clear"}'), m("tool", "second result")],
         "add_generation_prompt": True, "tools": [WEATHER_TOOL]},
        {"messages": [m("user", "Weather?"),
                      m("assistant", "Let me check.", tool_calls=[
                          {"function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}},
                          {"name": "get_weather", "arguments": {"city": "Bergen"}}]),
                      m("tool", "<ok>"), m("assistant", "Rainy.", reasoning_content="Both rainy.")],
         "add_generation_prompt": False, "tools": [WEATHER_TOOL]},
    ],
    "olmoe_1b_7b_0924_instruct": [
        {"messages": [], "add_generation_prompt": True},
    ],
    "deepseek_v2_lite_chat": [
        {"messages": [SYS, SYS, U1], "add_generation_prompt": True},
    ],
    "deepseek_v3": [
        {"messages": [SYS, m("system", "Second system."), U1], "add_generation_prompt": True},
        {"messages": [m("user", "Weather in Paris?"),
                      m("assistant", None, tool_calls=[
                          {"type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
                          {"type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Lyon"}'}}]),
                      m("tool", "21C"), m("tool", "19C")], "add_generation_prompt": True},
        {"messages": [m("user", "Weather?"),
                      m("assistant", None, tool_calls=[
                          {"type": "function", "function": {"name": "get_weather", "arguments": "{}"}}]),
                      m("tool", "sunny"), m("assistant", "It is sunny.")], "add_generation_prompt": True},
    ],
}


def render(template, bos, eos, case):
    kwargs = dict(case.get("extra", {}))
    try:
        rendered = render_jinja_template(
            conversations=[case["messages"]], tools=case.get("tools"), chat_template=template,
            add_generation_prompt=case["add_generation_prompt"], bos_token=bos, eos_token=eos, **kwargs)
        return {"rendered": rendered[0][0] if isinstance(rendered, tuple) else rendered[0]}
    except Exception as e:  # raise_exception -> jinja2 TemplateError(message)
        return {"error": str(e)}


def main():
    for name, (template, bos, eos) in TEMPLATES.items():
        d = os.path.join(OUT, name)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "tokenizer_config.json"), "w", encoding="utf-8") as f:
            json.dump({"chat_template": template, "bos_token": bos, "eos_token": eos}, f, ensure_ascii=False, indent=2)
            f.write("\n")
        cases = COMMON + EXTRA_CASES.get(name, [])
        with open(os.path.join(d, "cases.jsonl"), "w", encoding="utf-8") as f:
            for case in cases:
                row = {"messages": case["messages"], "add_generation_prompt": case["add_generation_prompt"],
                       "extra": case.get("extra", {})}
                if "tools" in case:
                    row["extra"] = {**row["extra"], "tools": case["tools"]}
                row.update(render(template, bos, eos, case))
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
        print(f"{name}: {len(cases)} cases")


if __name__ == "__main__":
    main()
