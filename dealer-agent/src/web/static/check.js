// The staff screen's checks as you type (the only script of the screen; the forms work
// without it, and are checked again when saved). On every change to a record form it posts
// the form to /check/<kind>, which runs the agent's entry checks (the same code the hub runs)
// and saves nothing, and shows the warnings next to the fields staff have touched.
(function () {
  "use strict";
  var form = document.getElementById("record-form");
  if (!form || !form.dataset.check) {
    return;
  }
  var touched = {};
  var asked = 0;
  var timer = null;

  function show(messages) {
    document.querySelectorAll(".live").forEach(function (el) {
      el.remove();
    });
    Object.keys(messages).forEach(function (name) {
      var field = form.elements[name];
      if (!touched[name] || !field || !field.insertAdjacentElement) {
        return;
      }
      var after = field;
      messages[name].forEach(function (text, i) {
        var note = document.createElement("span");
        note.className = "warning live";
        note.id = name.replace(/\./g, "-") + "-live-" + (i + 1);
        note.setAttribute("role", "status");
        note.textContent = text;
        after.insertAdjacentElement("afterend", note);
        after = note;
      });
    });
  }

  function check() {
    var mine = ++asked;
    fetch(form.dataset.check, {
      method: "POST",
      body: new URLSearchParams(new FormData(form)),
      credentials: "same-origin"
    })
      .then(function (answer) {
        return answer.ok ? answer.json() : {};
      })
      .then(function (messages) {
        // An older answer that arrives late is not shown over a newer one.
        if (mine === asked) {
          show(messages);
        }
      })
      .catch(function () {});
  }

  function changed(event) {
    if (event.target.name) {
      touched[event.target.name] = true;
    }
    clearTimeout(timer);
    timer = setTimeout(check, event.type === "change" ? 0 : 300);
  }

  form.addEventListener("input", changed);
  form.addEventListener("change", changed);
})();
