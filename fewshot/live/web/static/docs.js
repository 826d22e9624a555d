// The API's OpenAPI description (/openapi.json) as a page: each path, its methods, parameters, body and answers.
"use strict";

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text) node.textContent = text;
  if (cls) node.className = cls;
  return node;
}

function fields(schema) {
  const props = (schema && schema.properties) || {};
  const ul = el("ul");
  for (const [name, p] of Object.entries(props)) {
    const type = p.type === "array" ? `array of ${(p.items && (p.items.format || p.items.type)) || "items"}` : (p.format || p.type);
    ul.append(el("li", `${name} (${type})${p.description ? `: ${p.description}` : ""}`));
  }
  return ul;
}

fetch("/openapi.json", { credentials: "same-origin" }).then((r) => r.json()).then((spec) => {
  const main = document.getElementById("docs");
  main.replaceChildren(el("h1", `${spec.info.title} API ${spec.info.version}`), el("p", spec.info.description));
  for (const [path, methods] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(methods)) {
      const section = el("section");
      section.append(el("h2", `${method.toUpperCase()} ${path}`), el("p", op.summary));
      const body = op.requestBody && op.requestBody.content["multipart/form-data"];
      if (body) section.append(el("p", "Body (multipart/form-data):"), fields(body.schema));
      const answers = el("ul");
      for (const [code, r] of Object.entries(op.responses)) {
        const schema = r.content && r.content["application/json"].schema;
        answers.append(el("li", `${code}: ${r.description}`));
        if (code < 300 && schema && schema.properties) answers.lastChild.append(fields(schema));
      }
      section.append(el("p", "Answers:"), answers);
      main.append(section);
    }
  }
}).catch((e) => { document.getElementById("docs").append(el("p", `Cannot read /openapi.json: ${e.message}`, "error")); });
