import "./style.css";
window.loadedAt ??= Math.random().toString(36).slice(2);
document.getElementById("loaded").textContent = "loaded " + window.loadedAt;
