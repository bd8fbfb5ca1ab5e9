package main

// Services is services, for the compose tests (package main_test).
var Services = services
