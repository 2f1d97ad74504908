// The loan officer's page: a form built from the deployed loan model's input contract
// (GET /v1/tasks), answered by POST /v1/tasks/<task>/predict. No build step, no dependency.
"use strict";

const TASK = new URLSearchParams(location.search).get("task") || "loan_repayment";
const KEY_STORE = "serve-api-key";
let contract = null;

const $ = (id) => document.getElementById(id);

function headers() {
  const h = { "Content-Type": "application/json" };
  const key = sessionStorage.getItem(KEY_STORE);
  if (key) h["X-API-Key"] = key;
  return h;
}

function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = !message;
}

function fieldLabel(name) {
  return name.replace(/_/g, " ");
}

function number(v) {
  return Number.isInteger(v) ? String(v) : String(Math.round(v * 100) / 100);
}

function buildForm(task) {
  contract = task.input;
  const box = $("fields");
  box.replaceChildren();
  const legend = document.createElement("legend");
  legend.textContent = `Application (${task.task})`;
  box.append(legend);
  const all = [{ name: contract.id_column, kind: "id" }, ...contract.fields];
  for (const f of all) {
    const row = document.createElement("div");
    row.className = "field";
    const label = document.createElement("label");
    label.htmlFor = `f-${f.name}`;
    label.textContent = f.kind === "id" ? `${fieldLabel(f.name)} (optional)` : fieldLabel(f.name);
    let input;
    if (f.kind === "category") {
      input = document.createElement("select");
      const blank = new Option("(missing)", "");
      input.append(blank);
      for (const c of f.categories) input.append(new Option(c, c));
    } else if (f.kind === "boolean") {
      input = document.createElement("select");
      input.append(new Option("(missing)", ""), new Option("yes", "true"), new Option("no", "false"));
    } else {
      input = document.createElement("input");
      input.type = "text";
      input.inputMode = f.kind === "datetime" ? "text" : "decimal";
      if (f.kind === "datetime") input.placeholder = "YYYY-MM-DD";
      input.autocomplete = "off";
    }
    input.id = `f-${f.name}`;
    input.name = f.name;
    input.dataset.kind = f.kind;
    const hint = document.createElement("span");
    hint.className = "hint";
    hint.id = `h-${f.name}`;
    if ("min" in f) hint.textContent = `${number(f.min)} to ${number(f.max)} in training`;
    row.append(label, input, hint);
    box.append(row);
  }
  $("task-form").hidden = false;
}

function fillTypical() {
  for (const f of contract.fields) {
    const input = $(`f-${f.name}`);
    if (f.kind === "category") input.value = f.categories[0] || "";
    else if ("median" in f) input.value = number(f.median);
  }
}

function rowOfForm() {
  const row = {};
  const idValue = $(`f-${contract.id_column}`).value.trim();
  if (idValue) row[contract.id_column] = /^\d+$/.test(idValue) ? Number(idValue) : idValue;
  for (const f of contract.fields) {
    const text = $(`f-${f.name}`).value.trim();
    row[f.name] = text === "" ? null : text;  // the server validates: one source of truth
  }
  return row;
}

function outOfRange(row) {
  const notes = [];
  for (const f of contract.fields) {
    const v = Number(row[f.name]);
    if (row[f.name] !== null && "min" in f && Number.isFinite(v) && (v < f.min || v > f.max)) {
      notes.push(`${fieldLabel(f.name)} ${row[f.name]} is outside the training range`);
    }
  }
  return notes;
}

function clearMarks() {
  for (const el of document.querySelectorAll(".invalid")) el.classList.remove("invalid");
}

function explain422(detail) {
  if (!Array.isArray(detail)) return String(detail);
  return detail.map((e) => {
    const field = e.loc[e.loc.length - 1];
    const input = typeof field === "string" ? $(`f-${field}`) : null;
    if (input) input.classList.add("invalid");
    return typeof field === "string" ? `${fieldLabel(field)}: ${e.msg}` : e.msg;
  }).join("; ");
}

async function decide(event) {
  event.preventDefault();
  showError("");
  clearMarks();
  const row = rowOfForm();
  $("submit").disabled = true;
  try {
    const response = await fetch(`/v1/tasks/${TASK}/predict`, {
      method: "POST", headers: headers(), body: JSON.stringify({ rows: [row] }),
    });
    const body = await response.json();
    if (!response.ok) {
      $("result").hidden = true;
      const what = response.status === 422 ? explain422(body.detail) : body.detail;
      showError(`Not scored (${response.status}): ${what}`);
      return;
    }
    show(body, outOfRange(row));
  } catch (err) {
    showError(`The server did not answer: ${err}`);
  } finally {
    $("submit").disabled = false;
  }
}

function show(body, warnings) {
  const answer = body.rows[0];
  const decision = $("decision");
  decision.textContent = answer.decision || "no decision";
  decision.className = `decision ${answer.decision || ""}`;
  $("probability").textContent = `${(answer.probability * 100).toFixed(1)} %`;
  const list = $("reasons");
  list.replaceChildren();
  for (const reason of answer.reasons || []) {
    const item = document.createElement("li");
    item.textContent = reason;
    list.append(item);
  }
  if (!(answer.reasons || []).length) {
    const item = document.createElement("li");
    item.textContent = "no reason in this direction among the strongest factors";
    list.append(item);
  }
  const m = body.model;
  const cut = contractDecision;
  $("cutoffs").textContent = cut
    ? `Approve below ${(cut.approve_below * 100).toFixed(1)} %, decline at or above ${(cut.decline_at_or_above * 100).toFixed(1)} %.`
    : "";
  $("deployment").textContent = m.deployed
    ? `Decided by deployment ${m.deployment_id} (model ${m.model_name}, run ${m.run_id}, deployed ${m.deployed_at}).`
    : `Scored by ${m.model_name} of run ${m.run_id}, not deployed.`;
  $("result").hidden = false;
  const notes = [...warnings, ...(body.notes || [])];
  if (notes.length) showError(`Scored, with warnings: ${notes.join("; ")}`);
}

let contractDecision = null;

async function load() {
  showError("");
  const response = await fetch(`/v1/tasks/${TASK}`, { headers: headers() });
  if (response.status === 401) {
    $("key-box").hidden = false;
    $("status").textContent = "An API key is needed.";
    return;
  }
  const body = await response.json();
  if (!response.ok) {
    $("status").textContent = "";
    showError(`No model to answer (${response.status}): ${body.detail}`);
    return;
  }
  $("key-box").hidden = true;
  contractDecision = body.decision || null;
  const d = body.deployment;
  $("status").textContent =
    `Deployment ${d.deployment_id}: ${d.model_name} of run ${d.run_id}, deployed ${d.deployed_at} by ${d.command}.`;
  buildForm(body);
  fillTypical();
}

document.addEventListener("DOMContentLoaded", () => {
  $("task-form").addEventListener("submit", decide);
  $("typical").addEventListener("click", fillTypical);
  $("clear").addEventListener("click", () => {
    for (const el of $("fields").querySelectorAll("input, select")) el.value = "";
    clearMarks();
  });
  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(KEY_STORE, $("api-key").value);
    load();
  });
  load().catch((err) => showError(`The server did not answer: ${err}`));
});
