module podvisor.example/go

go 1.19
