module gvs

go 1.26
