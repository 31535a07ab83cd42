// Talking to Spoon's JSON endpoints from a page: session cookie plus the CSRF
// token (the cookie is HttpOnly; the page carries the token in a form field).
export function csrfToken() {
  const field = document.querySelector("input[name=csrfmiddlewaretoken]");
  return field ? field.value : "";
}

// A JSON request; a failure throws an Error carrying the answer's fields
// ({error, field}) so forms can point at the field at fault.
export async function call(method, url, data) {
  const options = { method, headers: { "X-CSRFToken": csrfToken() }, credentials: "same-origin" };
  if (data !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(data);
  }
  const response = await fetch(url, options);
  const body = response.status === 204 ? {} : await response.json();
  if (!response.ok) throw Object.assign(new Error(body.error || response.statusText), body);
  return body;
}
