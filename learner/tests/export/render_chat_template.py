"""Renders conversations with llama-cpp-python's Jinja2ChatFormatter — the code llama.cpp's
OpenAI server (llama-cpp-python 0.3.36) formats prompts with — and a chat template.

  render_chat_template.py TEMPLATE_FILE CONVERSATIONS.json
      CONVERSATIONS.json: a list of {"messages": [...], "tools": [...]} in the chat-completions
      format. Prints a JSON list of the rendered prompts (no generation prompt).
"""

import json
import sys

from llama_cpp.llama_chat_format import Jinja2ChatFormatter

template = open(sys.argv[1]).read()
formatter = Jinja2ChatFormatter(template=template, eos_token="<|im_end|>", bos_token="<|endoftext|>", add_generation_prompt=False)
out = []
for conv in json.load(open(sys.argv[2])):
    out.append(formatter(messages=conv["messages"], tools=conv["tools"] or None).prompt)
print(json.dumps(out))
