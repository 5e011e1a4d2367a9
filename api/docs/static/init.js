// Starts Swagger UI from a file, so the page runs under a CSP without inline scripts.
window.addEventListener("load", function () {
  var container = document.getElementById("swagger-ui-container");
  // No validator badge: it would load an image from validator.swagger.io, which the CSP refuses.
  window.ui = SwaggerUIBundle({
    url: container.dataset.specUrl, dom_id: "#swagger-ui-container", validatorUrl: null,
  });
});
