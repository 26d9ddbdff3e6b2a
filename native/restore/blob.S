/* Embeds the flat restorer blob (built from restorer.c) in crmigrate-restore. */
        .section .rodata
        .balign 64
        .globl restorer_blob_start
restorer_blob_start:
        .incbin RESTORER_BIN
        .globl restorer_blob_end
restorer_blob_end:
        .section .note.GNU-stack,"",@progbits
